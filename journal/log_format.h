// The journal's on-disk records: descriptor, revoke and commit blocks (docs/journal.md,
// "Log format"). Every record is a lunfs metadata block sealed with the file system's
// csum_seed at its own absolute block number, and names its slot and the fs UUID in its body,
// so a block left by an older file system, another slot or an earlier lap never passes as a
// record of this journal. Block images between descriptors are stored verbatim.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fs/format/ondisk.h"
#include "fs/result.h"

namespace lunfs::journal {

// Identifies one journal: which file system, which slot, and its seed.
struct LogIdentity {
  std::array<uint8_t, 16> uuid{};
  uint32_t slot = 0;
  uint64_t seed = 0;
};

// Body layout shared by the three record types (after the 32-byte block header).
inline constexpr size_t kSlotOffset = 32;    // u32 slot
inline constexpr size_t kCountOffset = 36;   // u32 entries (descriptor tags / revokes)
inline constexpr size_t kUuidOffset = 40;    // 16 bytes fs UUID
inline constexpr size_t kEntriesOffset = 64; // u64 entries
// Commit body.
inline constexpr size_t kCommitBlocksOffset = 36;  // u32 blocks of the txn before the commit
inline constexpr size_t kCommitHashOffset = 56;    // u64 xxHash64 of those blocks
inline constexpr size_t kCommitImagesOffset = 64;  // u32 images, u32 revokes (informative)

// Entries (target block numbers) one descriptor or revoke block holds.
inline size_t entries_per_block(uint32_t block_size) { return (block_size - kEntriesOffset) / 8; }

// Builds a descriptor or revoke block naming `entries` (at most entries_per_block).
void encode_list(std::span<std::byte> block, ondisk::BlockType type, const LogIdentity& id,
                 uint64_t blocknr, uint64_t sequence, std::span<const uint64_t> entries);
void encode_commit(std::span<std::byte> block, const LogIdentity& id, uint64_t blocknr,
                   uint64_t sequence, uint32_t txn_blocks, uint64_t txn_hash, uint32_t images,
                   uint32_t revokes);

// What a log position holds, judged against the record expected there.
struct Record {
  enum class Kind {
    kDescriptor,
    kRevoke,
    kCommit,
    kNotARecord,    // no lunfs log header at all (zeros, garbage, an image of a home block)
    kForeign,       // a log record of another file system (UUID) or slot
    kDamaged,       // looks like ours but the checksum or a field is wrong
  };
  Kind kind = Kind::kNotARecord;
  uint64_t sequence = 0;
  std::vector<uint64_t> entries;  // descriptor tags or revoked blocks
  uint32_t txn_blocks = 0;        // commit only
  uint64_t txn_hash = 0;          // commit only
  std::string problem;            // words for kForeign / kDamaged / kNotARecord
};

// Parses the block at absolute `blocknr` of journal `id`; `max_entry` bounds valid targets
// (the device's block count). Never fails: untrusted input becomes a Record kind with words.
Record parse_record(std::span<const std::byte> block, const LogIdentity& id, uint64_t blocknr,
                    uint64_t max_entry);

// The commit's checksum over the transaction's blocks, in log order.
class TxnHasher {
 public:
  explicit TxnHasher(uint64_t seed);
  ~TxnHasher();
  TxnHasher(const TxnHasher&) = delete;
  TxnHasher& operator=(const TxnHasher&) = delete;
  void add(std::span<const std::byte> block);
  uint64_t digest() const;

 private:
  void* state_;  // XXH64_state_t, kept out of the header
};

}  // namespace lunfs::journal

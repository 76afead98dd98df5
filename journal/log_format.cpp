// Codecs of the journal records. Parsing is defensive: everything read from the log is
// untrusted, and the parser reports what it found in words instead of failing.
#include "journal/log_format.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

namespace lunfs::journal {

using ondisk::BlockType;
using ondisk::get;
using ondisk::put;

namespace {

void put_identity(std::span<std::byte> block, const LogIdentity& id) {
  std::fill(block.begin(), block.end(), std::byte{0});
  put<uint32_t>(block, kSlotOffset, id.slot);
  std::memcpy(block.data() + kUuidOffset, id.uuid.data(), id.uuid.size());
}

bool is_log_type(uint16_t type) {
  return type == static_cast<uint16_t>(BlockType::kLogDescriptor) ||
         type == static_cast<uint16_t>(BlockType::kLogCommit) ||
         type == static_cast<uint16_t>(BlockType::kLogRevoke);
}

}  // namespace

void encode_list(std::span<std::byte> block, BlockType type, const LogIdentity& id,
                 uint64_t blocknr, uint64_t sequence, std::span<const uint64_t> entries) {
  put_identity(block, id);
  put<uint32_t>(block, kCountOffset, static_cast<uint32_t>(entries.size()));
  for (size_t i = 0; i < entries.size(); ++i) put<uint64_t>(block, kEntriesOffset + 8 * i, entries[i]);
  ondisk::seal_block(block, type, blocknr, sequence, id.seed);
}

void encode_commit(std::span<std::byte> block, const LogIdentity& id, uint64_t blocknr,
                   uint64_t sequence, uint32_t txn_blocks, uint64_t txn_hash, uint32_t images,
                   uint32_t revokes) {
  put_identity(block, id);
  put<uint32_t>(block, kCommitBlocksOffset, txn_blocks);
  put<uint64_t>(block, kCommitHashOffset, txn_hash);
  put<uint32_t>(block, kCommitImagesOffset, images);
  put<uint32_t>(block, kCommitImagesOffset + 4, revokes);
  ondisk::seal_block(block, BlockType::kLogCommit, blocknr, sequence, id.seed);
}

Record parse_record(std::span<const std::byte> block, const LogIdentity& id, uint64_t blocknr,
                    uint64_t max_entry) {
  Record r;
  if (block.size() < ondisk::kMinBlockSize) {
    r.problem = "block smaller than the smallest block size";
    return r;
  }
  ondisk::BlockHeader h = ondisk::peek_header(block);
  r.sequence = h.sequence;
  if (h.magic != ondisk::kMagic || !is_log_type(static_cast<uint16_t>(h.type))) {
    r.problem = h.magic != ondisk::kMagic ? "no lunfs header" : "not a journal record";
    return r;
  }
  // A record at the wrong place is a stale or misdirected block, not a record of this log.
  if (h.blocknr != blocknr) {
    r.problem = "journal record written for block " + std::to_string(h.blocknr);
    return r;
  }
  // Identity before checksum: a record of another file system fails the checksum anyway
  // (other seed), but "another file system" is the useful thing to say.
  std::array<uint8_t, 16> uuid;
  std::memcpy(uuid.data(), block.data() + kUuidOffset, uuid.size());
  uint32_t slot = get<uint32_t>(block, kSlotOffset);
  if (uuid != id.uuid) {
    r.kind = Record::Kind::kForeign;
    r.problem = "journal record of another file system (different UUID)";
    return r;
  }
  if (slot != id.slot) {
    r.kind = Record::Kind::kForeign;
    r.problem = "journal record of slot " + std::to_string(slot);
    return r;
  }
  r.kind = Record::Kind::kDamaged;
  if (ondisk::block_checksum(block, id.seed) != h.checksum) {
    r.problem = std::string(ondisk::block_type_name(h.type)) + " checksum mismatch";
    return r;
  }
  if (h.type == BlockType::kLogCommit) {
    r.txn_blocks = get<uint32_t>(block, kCommitBlocksOffset);
    r.txn_hash = get<uint64_t>(block, kCommitHashOffset);
    r.kind = Record::Kind::kCommit;
    return r;
  }
  uint32_t count = get<uint32_t>(block, kCountOffset);
  if (count > entries_per_block(static_cast<uint32_t>(block.size()))) {
    r.problem = std::string(ondisk::block_type_name(h.type)) + " claims " + std::to_string(count) +
                " entries, more than a block holds";
    return r;
  }
  r.entries.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t target = get<uint64_t>(block, kEntriesOffset + 8 * size_t{i});
    if (target >= max_entry) {
      r.problem = std::string(ondisk::block_type_name(h.type)) + " names block " +
                  std::to_string(target) + ", beyond the device";
      return r;
    }
    r.entries.push_back(target);
  }
  r.kind = h.type == BlockType::kLogDescriptor ? Record::Kind::kDescriptor : Record::Kind::kRevoke;
  return r;
}

TxnHasher::TxnHasher(uint64_t seed) : state_(XXH64_createState()) {
  XXH64_reset(static_cast<XXH64_state_t*>(state_), seed);
}
TxnHasher::~TxnHasher() { XXH64_freeState(static_cast<XXH64_state_t*>(state_)); }
void TxnHasher::add(std::span<const std::byte> block) {
  XXH64_update(static_cast<XXH64_state_t*>(state_), block.data(), block.size());
}
uint64_t TxnHasher::digest() const { return XXH64_digest(static_cast<XXH64_state_t*>(state_)); }

}  // namespace lunfs::journal

// A model of what journal-level workloads did, for the crash checker: which transaction
// last wrote each block (a metadata image through the journal, or ordered data written
// directly before the transaction was submitted) or freed it (revoke). Every block's
// contents name the transaction and block they belong to, so the verifier can tell exactly
// which state a recovered disk is in.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "fs/device/aligned_buffer.h"
#include "fs/metadata_log.h"
#include "fs/format/superblock.h"

namespace lunfs::crash {

class JournalModel {
 public:
  explicit JournalModel(const ondisk::Superblock& sb);

  // Starts transaction t = last()+1. Every transaction also rewrites the marker block, so
  // the marker names the newest transaction a recovered disk contains.
  TransactionRecord begin();
  void write_meta(TransactionRecord& txn, uint64_t block);
  void free_block(TransactionRecord& txn, uint64_t block);
  // Ordered data of the current transaction: written home before it is submitted.
  Status write_data(BlockDevice& dev, uint64_t block);
  // Records the blocks' contents before the workload touches them.
  Status remember_initial(BlockDevice& dev, uint64_t block);
  uint64_t last() const { return last_; }
  uint64_t marker() const { return marker_; }

  // The state (transaction count) the disk holds; an error when it holds less than
  // `acked`, or any block differs from that state.
  Result<uint64_t> verify(BlockDevice& disk, uint64_t acked) const;

 private:
  enum class Kind { kMeta, kData, kFree };
  struct Event {
    uint64_t txn;
    Kind kind;
  };
  std::shared_ptr<AlignedBuffer> meta_image(uint64_t txn, uint64_t block) const;
  AlignedBuffer data_block(uint64_t txn, uint64_t block) const;
  std::string describe(std::span<const std::byte> got, uint64_t block) const;

  const ondisk::Superblock sb_;
  const uint64_t marker_;
  uint64_t last_ = 0;
  std::map<uint64_t, std::vector<Event>> events_;
  std::map<uint64_t, std::vector<std::byte>> initial_;
};

}  // namespace lunfs::crash

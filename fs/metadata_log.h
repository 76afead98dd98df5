// The seam between the file-system core and the journal. The core changes metadata only
// inside transactions; at the end of an operation it hands the sealed images of the blocks
// it dirtied to a MetadataLog. The journal (journal/) implements this interface with a
// per-slot write-ahead log; WriteThroughLog below writes home directly (no crash safety) for
// tests and tools that need none. The core includes only this header, never journal/.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "fs/device/aligned_buffer.h"
#include "fs/device/block_device.h"
#include "fs/result.h"

namespace lunfs {

// One metadata block as it must appear at its home location (header sealed).
struct BlockImage {
  uint64_t blocknr = 0;
  std::shared_ptr<const AlignedBuffer> data;  // exactly one block
};

struct TransactionRecord {
  std::vector<BlockImage> blocks;
  // Blocks freed by this transaction: older logged images of them must not be replayed
  // over whatever the blocks hold next (revoke records).
  std::vector<uint64_t> revokes;
};

class MetadataLog {
 public:
  virtual ~MetadataLog() = default;

  // Queues a transaction for the next commit (group commit) and returns its sequence.
  // Ordered data: the caller submits only after the data writes of extents the
  // transaction allocates have completed, so the commit's flush covers them.
  virtual Result<uint64_t> submit(TransactionRecord txn) = 0;
  // Makes every submitted transaction durable (fsync, sync, timer, glock demote).
  virtual Status commit() = 0;
  // The newest sequence (as submit() returned it) whose transaction is durable. Blocks a
  // transaction freed may be handed out again once this reaches its sequence: before, a
  // crash would bring the old owner back, and replay or checkpoint would write the old
  // owner's images over the blocks' new contents.
  virtual uint64_t durable_sequence() const = 0;
  // Copies into `out` the newest image of `blocknr` that is committed or queued but not
  // yet written home; false when there is none (read the home location then).
  virtual bool lookup(uint64_t blocknr, std::span<std::byte> out) = 0;
  // Commits, then writes every logged image home and frees the log space
  // ("sync before demote": afterwards other nodes may read the home locations).
  virtual Status checkpoint() = 0;
};

// Writes each transaction straight to the home locations at submit; commit() flushes.
// Nothing is ever replayed, so every submitted transaction counts as durable for reuse.
class WriteThroughLog final : public MetadataLog {
 public:
  explicit WriteThroughLog(BlockDevice& dev) : dev_(dev) {}
  Result<uint64_t> submit(TransactionRecord txn) override {
    for (const auto& b : txn.blocks) {
      LUNFS_TRY(dev_.write(b.blocknr * b.data->size(), b.data->span()));
    }
    return ++sequence_;
  }
  Status commit() override { return dev_.flush(); }
  uint64_t durable_sequence() const override { return sequence_; }
  bool lookup(uint64_t, std::span<std::byte>) override { return false; }
  Status checkpoint() override { return commit(); }

 private:
  BlockDevice& dev_;
  uint64_t sequence_ = 0;
};

}  // namespace lunfs

// Journal replay: applies the committed transactions of any slot's journal to their home
// locations and marks the journal clean. The mount calls it on its own slot; the cluster
// layer calls it on a dead node's slot (after fencing, under that slot's lock).
#pragma once

#include <cstdint>
#include <string>

#include "fs/device/block_device.h"
#include "fs/format/superblock.h"
#include "journal/log_scan.h"

namespace lunfs::journal {

struct ReplayReport {
  uint32_t slot = 0;
  size_t transactions = 0;     // committed transactions found (and applied)
  uint64_t first_sequence = 0; // of the first applied transaction (0 when none)
  uint64_t last_sequence = 0;
  size_t blocks_written = 0;   // distinct home blocks written
  size_t blocks_revoked = 0;   // logged images not written because a revoke cancelled them
  LogEnd end = LogEnd::kClean;
  std::string end_reason;
  bool marked_clean = false;   // the slot header's tail now points past the applied log
  std::string to_string() const;
};

// Errors: the device failed, or the slot header cannot be decoded (EIO, in words). A log
// that ends in damage (LogEnd::kDamaged) is applied up to the damage and left dirty, so that
// fsck and the mount keep reporting it; callers decide whether to go on (Journal::open does
// not). Idempotent: running it again after a crash at any point gives the same home blocks.
Result<ReplayReport> replay(BlockDevice& dev, const ondisk::Superblock& sb, uint32_t slot);

}  // namespace lunfs::journal

// The repairs of fsck.lunfs: from what a check found, a plan of new block images that
// rebuilds the file system's bookkeeping from what is reachable (docs/journal.md, "fsck
// repairs"), written through a journal transaction, then the check again until it is clean.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "fs/device/block_device.h"
#include "fsck/checker.h"
#include "journal/replay.h"

namespace lunfs {

struct RepairAction {
  // Safe: nothing a user stored is lost or moved (bookkeeping rebuilt from what the files
  // use, a superblock or heartbeat restored). fsck -p (preen) makes only safe repairs.
  bool safe = false;
  std::string text;
};

struct RepairOptions {
  bool preen = false;  // -p: refuse (write nothing) when a repair is not safe
  std::ostream* verbose = nullptr;
  // Each check's progress (FsckOptions::on_progress).
  std::function<void(const std::string& phase, uint64_t done, uint64_t total)> on_progress;
};

struct RepairOutcome {
  std::vector<journal::ReplayReport> replayed;  // dirty journals replayed first
  FsckReport first;                   // the check before any repair
  FsckReport last;                    // the check after the repairs (== first when none)
  std::vector<RepairAction> actions;  // made; or, when refused, what would have been made
  bool wrote = false;
  bool refused = false;  // preen met a repair that is not safe and wrote nothing for it
};

// Replays dirty journals, checks, repairs and checks again, writing to `dev`: the caller
// has made sure that no node has the file system mounted. Each round's repairs go through
// one slot's journal (committed, then checkpointed), so a repair cut anywhere leaves either
// the state before it, or a journal whose replay completes it; the next run finishes.
// Errors: the device failed, or no superblock (as check_filesystem).
Result<RepairOutcome> repair_filesystem(BlockDevice& dev, const RepairOptions& options = {});

}  // namespace lunfs

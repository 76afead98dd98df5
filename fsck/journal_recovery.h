// fsck and dirty journals: which slots' journals hold committed work not yet written home
// (or an interrupted commit, or damage), and their replay before the check, so that fsck
// judges the file system as the next mount will see it. fsck.lunfs replays onto the device
// in repair mode and onto an OverlayDevice with -n; the policy of when it may write is
// fsck_main.cpp's (docs/journal.md, "fsck").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fs/device/block_device.h"
#include "fs/format/superblock.h"
#include "journal/replay.h"

namespace lunfs {

struct DirtyJournal {
  uint32_t slot = 0;
  std::string state;  // in words: what replay will do, or where the damage stops it
};

// Slots whose journal replay would change something. A slot whose header cannot be read or
// decoded is left to the checker, which reports it; log read errors are errors.
Result<std::vector<DirtyJournal>> find_dirty_journals(BlockDevice& dev, const ondisk::Superblock& sb);

// Replays the given slots on `dev`, in order. A damaged log is applied up to the damage
// and left dirty (journal::replay); the report says so.
Result<std::vector<journal::ReplayReport>> replay_journals(BlockDevice& dev, const ondisk::Superblock& sb,
                                                           const std::vector<DirtyJournal>& dirty);

}  // namespace lunfs

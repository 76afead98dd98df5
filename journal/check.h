// The journal part of fsck: is a slot's journal dirty (committed transactions not yet
// written home, so it needs replay), and is it damaged? Read-only; findings in words.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fs/device/block_device.h"
#include "fs/format/superblock.h"

namespace lunfs::journal {

struct JournalFinding {
  bool error = false;  // false: a warning
  std::string text;
};

struct JournalCheck {
  bool dirty = false;
  std::vector<JournalFinding> findings;
};

JournalCheck check_journal(BlockDevice& dev, const ondisk::Superblock& sb, uint32_t slot);

}  // namespace lunfs::journal

// The consistency checker behind fsck.lunfs: reads the whole file system through a
// BlockDevice and reports every problem in words, without writing anything. Operational
// failures (unreadable device, not lunfs, unknown features) come back as an error Status;
// damage comes back as findings in the report.
#pragma once

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "fs/device/block_device.h"
#include "fs/format/superblock.h"

namespace lunfs {

struct FsckFinding {
  enum class Kind { kError, kWarning };
  Kind kind;
  std::string text;
};

struct FsckReport {
  ondisk::Superblock sb;
  std::vector<FsckFinding> findings;
  uint64_t inodes = 0;
  uint64_t directories = 0;
  uint64_t used_blocks = 0;  // data-area blocks not free
  size_t errors() const;
  size_t warnings() const;
  // True when a finding's text contains `needle` (tests use it).
  bool mentions(const std::string& needle) const;
};

struct FsckOptions {
  std::ostream* verbose = nullptr;  // phase progress goes here when set
  // Told each phase ("3/7 resource groups") and, in the phases that go through every
  // resource group, how many of them are done: fsck.lunfs's progress bar.
  std::function<void(const std::string& phase, uint64_t done, uint64_t total)> on_progress;
};

// The superblock fsck trusts: the primary, or, when the primary is damaged, an intact
// backup at the end of the device (primary_damage then says what is wrong with the primary).
// Errors: not lunfs (EMEDIUMTYPE, naming what the device holds instead), no intact
// superblock (EUCLEAN), unknown features, device errors.
struct LocatedSuperblock {
  ondisk::Superblock sb;
  std::string primary_damage;  // empty when the primary is intact
  uint64_t backup_block = 0;   // where the backup used instead was found
};
Result<LocatedSuperblock> locate_superblock(BlockDevice& dev);

Result<FsckReport> check_filesystem(BlockDevice& dev, const FsckOptions& options = {});

}  // namespace lunfs

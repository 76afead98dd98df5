// Writes a fresh lunfs onto a device: the part of mkfs.lunfs that tests call directly.
// It writes only what the format needs (about one block per resource group plus the slot
// area), never the whole device, so formatting a 16 TiB LUN takes well under a second.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "fs/device/block_device.h"
#include "fs/format/superblock.h"

namespace lunfs {

struct MkfsOptions {
  std::string cluster_name;
  std::string fs_name;
  uint32_t journals = 8;
  std::optional<uint32_t> journal_mib;  // default: 128, scaled down on small devices
  uint32_t block_size = 4096;
  std::optional<uint32_t> rgrp_mib;  // default: scaled to the device, 32..1024
  std::string label;
  std::optional<std::array<uint8_t, 16>> uuid;  // default: random
  int64_t now_sec = 0;  // creation time; 0 = the clock
  uint32_t now_nsec = 0;
};

// Chooses the layout for `dev` without writing; errors say what to change.
Result<ondisk::Superblock> plan_filesystem(const BlockDevice& dev, const MkfsOptions& options);
// Writes the planned file system. The primary superblock goes last, after a flush, so an
// interrupted mkfs leaves a device that is not mistaken for a valid lunfs.
Status write_filesystem(BlockDevice& dev, const ondisk::Superblock& sb);
// Human summary in the manner of mkfs.gfs2.
std::string describe_filesystem(const BlockDevice& dev, const ondisk::Superblock& sb);

}  // namespace lunfs

// Recognises what a device already holds (lunfs, ext2/3/4, XFS, Btrfs, GFS2, OCFS2, LVM,
// LUKS, swap, partition tables), so mkfs.lunfs refuses to overwrite it without -f and
// fsck.lunfs can say "this is an XFS file system" instead of "bad magic".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fs/device/block_device.h"

namespace lunfs {

struct Signature {
  std::string what;     // "ext4 file system", "GPT partition table", ...
  uint64_t offset = 0;  // byte offset of the magic
};

Result<std::vector<Signature>> detect_signatures(BlockDevice& dev);
// Bytes mkfs zeroes at the start and the end of the device so that none of the above
// signatures survives (the GPT backup lives in the last 34 sectors).
inline constexpr uint64_t kSignatureWipeHead = 128 * 1024;
inline constexpr uint64_t kSignatureWipeTail = 1024 * 1024;

}  // namespace lunfs

// fsck.lunfs's claim on its device: proof that nothing on this host uses the file system
// while fsck looks at it or replays its journals. mount.lunfs holds a shared flock(2) on
// the device for as long as it runs (fuse/main.cpp); fsck takes it exclusively, so neither
// can start while the other holds it. For a block device fsck also opens it O_EXCL, which
// the kernel refuses while a kernel file system, device mapper or another exclusive opener
// holds it. Other hosts are invisible from here: that is fsck_main.cpp's policy.
#pragma once

#include <string>
#include <vector>

#include "fs/result.h"

namespace lunfs {

class DeviceClaim {
 public:
  // `fd` is fsck's open descriptor of `path` (the lock lives with it). Refuses (EBUSY, in
  // words, naming the mount points found in /proc/self/mountinfo) when the device is in use.
  static Result<DeviceClaim> take(const std::string& path, int fd, bool block_device);
  DeviceClaim(DeviceClaim&& other) noexcept : exclusive_fd_(other.exclusive_fd_) { other.exclusive_fd_ = -1; }
  DeviceClaim(const DeviceClaim&) = delete;
  DeviceClaim& operator=(const DeviceClaim&) = delete;
  DeviceClaim& operator=(DeviceClaim&&) = delete;
  ~DeviceClaim();

 private:
  explicit DeviceClaim(int exclusive_fd) : exclusive_fd_(exclusive_fd) {}
  int exclusive_fd_ = -1;  // the O_EXCL descriptor of a block device, held until fsck ends
};

// Mount points of lunfs mounts on this host whose source is `path` (by name or by the
// file it resolves to).
std::vector<std::string> lunfs_mounts_of(const std::string& path);

}  // namespace lunfs

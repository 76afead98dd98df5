// This host's claim on a LUN: proof that no other lunfs tool of this host uses it.
// mount.lunfs (for the life of the daemon), fsck.lunfs and mkfs.lunfs each take it
// exclusively, so two mounts of one LUN, or a mount and an fsck, never run at once on one
// host: an exclusive flock(2) on the device's open file (it goes with the last descriptor,
// so a daemon killed with SIGKILL releases it), and for a block device also an O_EXCL open,
// which the kernel refuses while a kernel file system, device mapper or another exclusive
// opener holds it. Other hosts are invisible from here: their mounts are seen through the
// disk heartbeats (fs/core/heartbeat.h).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "fs/result.h"

namespace lunfs {

class DeviceClaim {
 public:
  // `fd` is the caller's open descriptor of `path` (the lock lives with it). Refuses (EBUSY,
  // in words: "PATH is in use on this host by mount.lunfs (pid 12, slot 0, mounted on /mnt)")
  // when another claim holds the device. A mount.lunfs with no lunfs mount of `path` left
  // (a daemon finishing after umount returned) is waited for, up to a minute.
  static Result<DeviceClaim> take(const std::string& path, int fd, bool block_device);
  // A cluster mount's claim: a shared flock, which keeps this host's nolock mounts, fsck
  // and mkfs away but not other cluster mounts (the nodes of tests/cluster share one host;
  // the lock space keeps them apart). No O_EXCL open, for the same reason.
  static Result<DeviceClaim> take_shared(const std::string& path, int fd);
  DeviceClaim(DeviceClaim&& other) noexcept : exclusive_fd_(other.exclusive_fd_) { other.exclusive_fd_ = -1; }
  DeviceClaim(const DeviceClaim&) = delete;
  DeviceClaim& operator=(const DeviceClaim&) = delete;
  DeviceClaim& operator=(DeviceClaim&&) = delete;
  ~DeviceClaim();

 private:
  explicit DeviceClaim(int exclusive_fd) : exclusive_fd_(exclusive_fd) {}
  int exclusive_fd_ = -1;  // the O_EXCL descriptor of a block device, held with the claim
};

// Mount points of lunfs mounts on this host whose source is `path` (by name or by the
// file it resolves to), as this process's mount namespace sees them, or, given a pid, as
// that process's does.
std::vector<std::string> lunfs_mounts_of(const std::string& path, pid_t seen_by = 0);

// Who holds a flock on the file open as `fd`, in words: for each holder from /proc/locks its
// program, pid and (for mount.lunfs) slot, plus the lunfs mount points of `path`. A daemon
// that forked into the background after taking its lock shows by its mount points only.
std::string describe_claim_holders(const std::string& path, int fd);

}  // namespace lunfs

// The thread that tells the kernel to forget what it caches about an inode whose glock this
// node gives up (architecture decision 8), so that the next stat on this node asks the
// daemon, which asks the cluster. The notification is never sent from a request handler
// (FUSE-NOTES: the kernel may wait there for locks a request in flight holds). Only
// attributes are dropped (a negative offset): that takes no page or directory lock, so the
// caller, a demote that keeps new holders of the glock waiting, can wait for it safely.
// Cluster mounts keep no page cache and no entries (lowlevel.h), so there is nothing else
// to drop; docs/cluster.md says why.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace lunfs {

class KernelInvalidator {
 public:
  // `root` is the core's root inode number (the kernel knows it as FUSE_ROOT_ID).
  KernelInvalidator(fuse_session* se, uint64_t root);
  ~KernelInvalidator() { stop(); }
  KernelInvalidator(const KernelInvalidator&) = delete;
  KernelInvalidator& operator=(const KernelInvalidator&) = delete;

  // Returns once the kernel has dropped the cached attributes of `ino` (at once after stop()).
  void invalidate(uint64_t ino);
  // Before the session goes away; later calls return at once.
  void stop();

 private:
  void run();
  fuse_session* const se_;
  const uint64_t root_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::vector<uint64_t> queue_;
  uint64_t queued_ = 0;  // tickets: requests queued so far
  uint64_t done_ = 0;    // requests carried out so far (in ticket order)
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace lunfs

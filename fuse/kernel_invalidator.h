// The thread that tells the kernel to forget what it caches about an inode whose glock this
// node gives up (architecture decision 8), so that the next stat on this node asks the
// daemon, which asks the cluster. The notification is never sent from a request handler
// (FUSE-NOTES: the kernel may wait there for locks a request in flight holds). Only
// attributes are dropped (a negative offset): that takes no page or directory lock, so the
// caller, a demote that keeps new holders of the glock waiting, can wait for it safely.
// Cluster mounts keep no page cache and no entries (lowlevel.h), so there is nothing else
// to drop; docs/cluster.md says why.
//
// A second thread drops names another node removed, when that node wants to free the
// inode and this node's kernel holds it only through the cached name (iopen glocks,
// decision 11). That takes the parent directory's lock in the kernel, which a request in
// flight may hold while it waits for a glock, so nobody waits for it: its own thread,
// never the one that demotes wait for.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
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
  // Queues: the kernel drops `name` in `parent` if it names `child`, and forgets `child`
  // once nothing else uses it (fuse_lowlevel_notify_delete). Returns at once.
  void delete_name(uint64_t parent, uint64_t child, const std::string& name);
  // Before the session goes away; later calls return at once.
  void stop();

 private:
  void run();
  void run_deletes();
  fuse_ino_t node_of(uint64_t ino) const { return ino == root_ ? FUSE_ROOT_ID : ino; }
  fuse_session* const se_;
  const uint64_t root_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::vector<uint64_t> queue_;
  uint64_t queued_ = 0;  // tickets: requests queued so far
  uint64_t done_ = 0;    // requests carried out so far (in ticket order)
  bool stopping_ = false;
  std::thread thread_;
  struct Deletion {
    uint64_t parent, child;
    std::string name;
  };
  std::vector<Deletion> deletions_;  // guarded by mu_
  std::condition_variable deletions_changed_;
  std::thread delete_thread_;
};

}  // namespace lunfs

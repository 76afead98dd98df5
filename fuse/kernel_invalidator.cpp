// KernelInvalidator; see kernel_invalidator.h.
#include "fuse/kernel_invalidator.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace lunfs {

KernelInvalidator::KernelInvalidator(fuse_session* se, uint64_t root) : se_(se), root_(root) {
  thread_ = std::thread([this] { run(); });
}

void KernelInvalidator::invalidate(uint64_t ino) {
  std::unique_lock lock(mu_);
  if (stopping_) return;
  queue_.push_back(ino);
  const uint64_t ticket = ++queued_;
  changed_.notify_all();
  changed_.wait(lock, [&] { return stopping_ || done_ >= ticket; });
}

void KernelInvalidator::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    // Coalesced: every request queued meanwhile goes out in this round.
    std::vector<uint64_t> batch;
    batch.swap(queue_);
    const uint64_t upto = queued_;
    lock.unlock();
    for (uint64_t ino : batch) {
      const fuse_ino_t node = ino == root_ ? FUSE_ROOT_ID : ino;
      // ENOENT: the kernel has nothing cached for it.
      const int rc = fuse_lowlevel_notify_inval_inode(se_, node, -1, 0);
      if (rc != 0 && rc != -ENOENT) {
        std::fprintf(stderr, "lunfs: invalidating inode %llu in the kernel: %s\n",
                     static_cast<unsigned long long>(ino), std::strerror(-rc));
      }
    }
    lock.lock();
    done_ = upto;
    changed_.notify_all();
  }
}

void KernelInvalidator::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    changed_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace lunfs

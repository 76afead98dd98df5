// KernelInvalidator; see kernel_invalidator.h.
#include "fuse/kernel_invalidator.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace lunfs {

KernelInvalidator::KernelInvalidator(fuse_session* se, uint64_t root) : se_(se), root_(root) {
  thread_ = std::thread([this] { run(); });
  delete_thread_ = std::thread([this] { run_deletes(); });
}

void KernelInvalidator::delete_name(uint64_t parent, uint64_t child, const std::string& name) {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  deletions_.push_back({parent, child, name});
  deletions_changed_.notify_all();
}

void KernelInvalidator::run_deletes() {
  std::unique_lock lock(mu_);
  for (;;) {
    deletions_changed_.wait(lock, [&] { return stopping_ || !deletions_.empty(); });
    if (stopping_) return;
    std::vector<Deletion> batch;
    batch.swap(deletions_);
    lock.unlock();
    for (const Deletion& d : batch) {
      // ENOENT: the kernel no longer has that name for that inode (renamed, or gone).
      const int rc = fuse_lowlevel_notify_delete(se_, node_of(d.parent), node_of(d.child), d.name.data(), d.name.size());
      if (rc != 0 && rc != -ENOENT && rc != -ENOTDIR) {
        std::fprintf(stderr, "lunfs: dropping the name of inode %llu removed on another node: %s\n",
                     static_cast<unsigned long long>(d.child), std::strerror(-rc));
      }
    }
    lock.lock();
  }
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
      const fuse_ino_t node = node_of(ino);
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
    deletions_changed_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  if (delete_thread_.joinable()) delete_thread_.join();
}

}  // namespace lunfs

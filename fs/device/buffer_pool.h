// Recycled aligned buffers for asynchronous direct I/O. A request's buffer lives until its
// transfer completes on another thread, so the per-thread scratch buffer of the synchronous
// path (scratch_buffer.h) cannot serve it, and a fresh aligned_alloc + page faults per 4 KiB
// request would cost more than the copy it holds.
#pragma once

#include <cstddef>
#include <mutex>
#include <span>
#include <vector>

#include "fs/device/aligned_buffer.h"

namespace lunfs {

class BufferPool {
 public:
  // A buffer on loan; goes back to its pool when destroyed.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& o) noexcept : pool_(o.pool_), buffer_(std::move(o.buffer_)), size_(o.size_) { o.pool_ = nullptr; }
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease() {
      if (pool_) pool_->give_back(std::move(buffer_));
    }
    std::span<std::byte> span() { return buffer_.span().first(size_); }

   private:
    friend class BufferPool;
    Lease(BufferPool* pool, AlignedBuffer buffer, size_t size) : pool_(pool), buffer_(std::move(buffer)), size_(size) {}
    BufferPool* pool_ = nullptr;
    AlignedBuffer buffer_;
    size_t size_ = 0;
  };

  // Contents are whatever the last user left.
  Lease get(size_t bytes) {
    const size_t cls = size_class(bytes);
    if (cls < kClasses) {
      std::lock_guard lock(mu_);
      auto& free = free_[cls];
      if (!free.empty()) {
        AlignedBuffer b = std::move(free.back());
        free.pop_back();
        kept_bytes_ -= b.size();
        return Lease(this, std::move(b), bytes);
      }
    }
    return Lease(this, AlignedBuffer(cls < kClasses ? kSmallest << cls : bytes), bytes);
  }

 private:
  static constexpr size_t kSmallest = 4096;
  static constexpr size_t kClasses = 9;  // 4 KiB .. 1 MiB, FUSE's largest request
  // Kept: enough buffers of a class for the kernel's max_background (128) requests in
  // flight, and at most 64 MiB in all, so a burst of 1 MiB requests does not pin a
  // hypervisor host's memory after it ends.
  static constexpr size_t kMaxKeptPerClass = 128;
  static constexpr size_t kMaxKeptBytes = size_t{64} << 20;

  static size_t size_class(size_t bytes) {
    size_t cls = 0;
    while (cls < kClasses && (kSmallest << cls) < bytes) ++cls;
    return cls;
  }

  void give_back(AlignedBuffer buffer) {
    const size_t cls = size_class(buffer.size());
    if (cls >= kClasses || (kSmallest << cls) != buffer.size()) return;  // odd size: freed
    std::lock_guard lock(mu_);
    auto& free = free_[cls];
    if (free.size() < kMaxKeptPerClass && kept_bytes_ + buffer.size() <= kMaxKeptBytes) {
      kept_bytes_ += buffer.size();
      free.push_back(std::move(buffer));
    }
  }

  std::mutex mu_;
  std::vector<AlignedBuffer> free_[kClasses];
  size_t kept_bytes_ = 0;
};

}  // namespace lunfs

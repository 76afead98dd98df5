// Recycled aligned buffers for asynchronous direct I/O. A request's buffer lives until its
// transfer completes on another thread, so the per-thread scratch buffer of the synchronous
// path (scratch_buffer.h) cannot serve it, and a fresh aligned_alloc + page faults per 4 KiB
// request would cost more than the copy it holds.
#pragma once

#include <cstddef>
#include <mutex>
#include <span>
#include <vector>

#include "fs/aligned_buffer.h"

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
        return Lease(this, std::move(b), bytes);
      }
    }
    return Lease(this, AlignedBuffer(cls < kClasses ? kSmallest << cls : bytes), bytes);
  }

 private:
  static constexpr size_t kSmallest = 4096;
  static constexpr size_t kClasses = 9;  // 4 KiB .. 1 MiB, FUSE's largest request
  // Kept per class: enough for max_background requests in flight, capped at 64 MiB.
  static constexpr size_t kKeptBytesPerClass = size_t{64} << 20;
  static constexpr size_t kMaxKeptPerClass = 256;

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
    if (free.size() < kMaxKeptPerClass && (free.size() + 1) * buffer.size() <= kKeptBytesPerClass) {
      free.push_back(std::move(buffer));
    }
  }

  std::mutex mu_;
  std::vector<AlignedBuffer> free_[kClasses];
};

}  // namespace lunfs

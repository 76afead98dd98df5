// Recycled buffers for metadata block images. Every transaction encodes new images (a
// create writes the new inode's block, the directory leaf, the directory inode, bitmaps)
// and every cache miss reads one; allocating each with aligned_alloc and zeroing it cost
// about half of a create's CPU, mostly page faults on fresh memory from a heap that
// 4 KiB-aligned blocks fragment. Images are shared (the cache, transactions and the
// journal hold them), so a buffer comes back to the pool when its last reference goes;
// the pool keeps a bounded number of them and frees the rest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "fs/device/aligned_buffer.h"

namespace lunfs {

class BlockImagePool {
 public:
  BlockImagePool(uint32_t block_size, size_t max_idle);

  // A zeroed block buffer, for encoding a new image.
  std::shared_ptr<AlignedBuffer> zeroed();
  // A block buffer with arbitrary contents, for a caller that overwrites all of it.
  std::shared_ptr<AlignedBuffer> for_overwrite();
  uint32_t block_size() const { return block_size_; }
  // Buffers waiting to be handed out again.
  size_t idle() const;

 private:
  // Shared with every buffer handed out: images outlive the pool's owner when the journal
  // still holds them at unmount.
  struct Shelf {
    explicit Shelf(size_t max) : max_idle(max) {}
    std::mutex mu;
    const size_t max_idle;
    std::vector<std::unique_ptr<AlignedBuffer>> idle;
    void give_back(AlignedBuffer* buf);
  };

  const uint32_t block_size_;
  std::shared_ptr<Shelf> shelf_;
};

}  // namespace lunfs

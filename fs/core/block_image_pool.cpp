// Block image buffers; see block_image_pool.h.
#include "fs/core/block_image_pool.h"

namespace lunfs {

BlockImagePool::BlockImagePool(uint32_t block_size, size_t max_idle)
    : block_size_(block_size), shelf_(std::make_shared<Shelf>(max_idle)) {}

void BlockImagePool::Shelf::give_back(AlignedBuffer* buf) {
  std::unique_ptr<AlignedBuffer> owned(buf);
  std::lock_guard lock(mu);
  if (idle.size() < max_idle) idle.push_back(std::move(owned));
}

std::shared_ptr<AlignedBuffer> BlockImagePool::for_overwrite() {
  std::unique_ptr<AlignedBuffer> buf;
  {
    std::lock_guard lock(shelf_->mu);
    if (!shelf_->idle.empty()) {
      buf = std::move(shelf_->idle.back());
      shelf_->idle.pop_back();
    }
  }
  if (!buf) buf = std::make_unique<AlignedBuffer>(block_size_);
  return std::shared_ptr<AlignedBuffer>(buf.release(),
                                        [shelf = shelf_](AlignedBuffer* b) { shelf->give_back(b); });
}

std::shared_ptr<AlignedBuffer> BlockImagePool::zeroed() {
  auto buf = for_overwrite();
  buf->zero();
  return buf;
}

size_t BlockImagePool::idle() const {
  std::lock_guard lock(shelf_->mu);
  return shelf_->idle.size();
}

}  // namespace lunfs

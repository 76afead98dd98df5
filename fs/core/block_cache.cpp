// Metadata block cache; see block_cache.h.
#include "fs/core/block_cache.h"

#include <algorithm>

namespace lunfs {

namespace {
// Idle image buffers kept for reuse: enough for the images a burst of transactions
// supersedes, small next to the cache itself.
constexpr size_t kIdleImages = 1024;
}  // namespace

BlockCache::BlockCache(BlockDevice& dev, MetadataLog& log, uint32_t block_size, size_t max_blocks)
    : dev_(dev), log_(log), max_blocks_(std::max<size_t>(max_blocks, 1)), pool_(block_size, kIdleImages) {}

Result<BlockRef> BlockCache::get(uint64_t blocknr) {
  {
    std::lock_guard lock(mu_);
    auto it = index_.find(blocknr);
    if (it != index_.end()) {
      Slot& s = slots_[it->second];
      s.referenced = true;
      return s.image;
    }
  }
  auto buf = pool_.for_overwrite();
  if (!log_.lookup(blocknr, buf->span())) {
    LUNFS_TRY(dev_.read(blocknr * block_size(), buf->span()));
  }
  std::lock_guard lock(mu_);
  // Another thread may have read or committed it meanwhile; the cached image is newer.
  auto it = index_.find(blocknr);
  if (it != index_.end()) return slots_[it->second].image;
  insert_locked(blocknr, buf);
  return BlockRef(buf);
}

void BlockCache::put(uint64_t blocknr, BlockRef image) {
  std::lock_guard lock(mu_);
  // A committed image of a block the cache holds: the block is in use, keep it.
  auto it = index_.find(blocknr);
  if (it != index_.end()) {
    slots_[it->second].image = std::move(image);
    slots_[it->second].referenced = true;
    return;
  }
  insert_locked(blocknr, std::move(image));
}

void BlockCache::insert_locked(uint64_t blocknr, BlockRef image) {
  size_t i = claim_slot_locked();
  slots_[i] = Slot{blocknr, std::move(image), false};
  index_.emplace(blocknr, i);
}

size_t BlockCache::claim_slot_locked() {
  if (!free_slots_.empty()) {
    size_t i = free_slots_.back();
    free_slots_.pop_back();
    return i;
  }
  if (slots_.size() < max_blocks_) {
    slots_.emplace_back();
    return slots_.size() - 1;
  }
  // Every cached block is clean (committed: the log can give it back), so any may go.
  for (;;) {
    Slot& s = slots_[hand_];
    size_t i = hand_;
    hand_ = (hand_ + 1) % slots_.size();
    if (s.referenced) {
      s.referenced = false;
      continue;
    }
    index_.erase(s.blocknr);
    s.image.reset();
    return i;
  }
}

void BlockCache::drop(uint64_t blocknr) {
  std::lock_guard lock(mu_);
  auto it = index_.find(blocknr);
  if (it == index_.end()) return;
  slots_[it->second] = Slot{};
  free_slots_.push_back(it->second);
  index_.erase(it);
}

void BlockCache::clear() {
  std::lock_guard lock(mu_);
  index_.clear();
  slots_.clear();
  free_slots_.clear();
  hand_ = 0;
}

size_t BlockCache::size() const {
  std::lock_guard lock(mu_);
  return index_.size();
}

}  // namespace lunfs

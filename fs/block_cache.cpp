// Metadata block cache; see block_cache.h.
#include "fs/block_cache.h"

namespace lunfs {

Result<BlockRef> BlockCache::get(uint64_t blocknr) {
  {
    std::lock_guard lock(mu_);
    auto it = blocks_.find(blocknr);
    if (it != blocks_.end()) return it->second;
  }
  auto buf = std::make_shared<AlignedBuffer>(block_size_);
  if (!log_.lookup(blocknr, buf->span())) {
    LUNFS_TRY(dev_.read(blocknr * block_size_, buf->span()));
  }
  put(blocknr, buf);
  return BlockRef(buf);
}

void BlockCache::put(uint64_t blocknr, BlockRef image) {
  std::lock_guard lock(mu_);
  // Every cached block is clean (committed: the log can give it back), so when the cache
  // is full any entry may go; dropping an arbitrary bucket's worth is cheap and good enough.
  if (blocks_.size() >= max_blocks_ && !blocks_.count(blocknr)) {
    size_t evict = max_blocks_ / 8 + 1;
    for (auto it = blocks_.begin(); it != blocks_.end() && evict > 0; --evict) it = blocks_.erase(it);
  }
  blocks_[blocknr] = std::move(image);
}

void BlockCache::drop(uint64_t blocknr) {
  std::lock_guard lock(mu_);
  blocks_.erase(blocknr);
}

void BlockCache::clear() {
  std::lock_guard lock(mu_);
  blocks_.clear();
}

size_t BlockCache::size() const {
  std::lock_guard lock(mu_);
  return blocks_.size();
}

}  // namespace lunfs

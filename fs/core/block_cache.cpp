// Metadata block cache; see block_cache.h.
#include "fs/core/block_cache.h"

#include <algorithm>

#include "fs/format/ondisk.h"

namespace lunfs {

namespace {
// Idle image buffers kept for reuse: enough for the images a burst of transactions
// supersedes, small next to the cache itself.
constexpr size_t kIdleImages = 1024;

// The owning inode of an extent node, directory hash or leaf block or xattr block (all
// keep it right after the common header), else 0. Read without verifying: an image that
// is not what it claims is caught by its decoder, and filing it wrongly costs nothing.
uint64_t owner_of(const AlignedBuffer& image) {
  using ondisk::BlockType;
  auto b = image.span();
  if (b.size() < ondisk::kHeaderSize + 8 || ondisk::get<uint32_t>(b, 0) != ondisk::kMagic) return 0;
  switch (static_cast<BlockType>(ondisk::get<uint16_t>(b, 4))) {
    case BlockType::kExtentNode:
    case BlockType::kDirHash:
    case BlockType::kDirLeaf:
    case BlockType::kXattr: return ondisk::get<uint64_t>(b, ondisk::kHeaderSize);
    default: return 0;
  }
}
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
    Slot& s = slots_[it->second];
    disown_locked(s);
    s.image = std::move(image);
    s.referenced = true;
    own_locked(s);
    return;
  }
  insert_locked(blocknr, std::move(image));
}

void BlockCache::insert_locked(uint64_t blocknr, BlockRef image) {
  size_t i = claim_slot_locked();
  slots_[i] = Slot{blocknr, std::move(image), false, 0};
  own_locked(slots_[i]);
  index_.emplace(blocknr, i);
}

void BlockCache::own_locked(Slot& s) {
  s.owner = owner_of(*s.image);
  if (s.owner) owned_[s.owner].insert(s.blocknr);
}

void BlockCache::disown_locked(const Slot& s) {
  if (!s.owner) return;
  auto it = owned_.find(s.owner);
  if (it == owned_.end()) return;
  it->second.erase(s.blocknr);
  if (it->second.empty()) owned_.erase(it);
}

void BlockCache::free_slot_locked(size_t i) {
  disown_locked(slots_[i]);
  index_.erase(slots_[i].blocknr);
  slots_[i] = Slot{};
  free_slots_.push_back(i);
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
    disown_locked(s);
    index_.erase(s.blocknr);
    s = Slot{};
    return i;
  }
}

void BlockCache::drop(uint64_t blocknr) {
  std::lock_guard lock(mu_);
  auto it = index_.find(blocknr);
  if (it == index_.end()) return;
  free_slot_locked(it->second);
}

void BlockCache::drop_owned(uint64_t owner) {
  std::lock_guard lock(mu_);
  auto it = owned_.find(owner);
  if (it == owned_.end()) return;
  const std::unordered_set<uint64_t> blocks = std::move(it->second);
  owned_.erase(it);
  for (uint64_t nr : blocks) {
    auto slot = index_.find(nr);
    if (slot == index_.end()) continue;
    slots_[slot->second].owner = 0;  // already out of owned_
    free_slot_locked(slot->second);
  }
}

Result<BlockRef> BlockCache::read_uncached(uint64_t blocknr) {
  auto buf = pool_.for_overwrite();
  if (!log_.lookup(blocknr, buf->span())) {
    LUNFS_TRY(dev_.read(blocknr * block_size(), buf->span()));
  }
  return BlockRef(buf);
}

void BlockCache::clear() {
  std::lock_guard lock(mu_);
  index_.clear();
  owned_.clear();
  slots_.clear();
  free_slots_.clear();
  hand_ = 0;
}

size_t BlockCache::size() const {
  std::lock_guard lock(mu_);
  return index_.size();
}

}  // namespace lunfs

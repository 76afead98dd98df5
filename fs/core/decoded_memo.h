// Decoded forms of metadata blocks, remembered by the identity of the sealed image they
// came from. Images are immutable: a change makes a new image, and another node's change
// reaches this node as a new image read after the glock demote dropped the old one. So
// "the same image object as last time" means "the same decode as last time", and the
// checksum, the bounds checks and the parsing need not run again. They used to run on
// every walk of an extent tree: an allocating write walks its leaf eight times, and the
// decode was a quarter of a thin image's first-write CPU, all of it under the metadata
// mutex (docs/performance.md).
//
// The memo holds weak references: it never keeps an image alive, and an entry whose image
// is gone is never returned. `tag` is whatever else the decode depended on (the owning
// inode of an extent node), compared on every lookup.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "fs/device/aligned_buffer.h"

namespace lunfs {

template <typename Decoded>
class DecodedMemo {
 public:
  explicit DecodedMemo(size_t capacity) : capacity_(capacity) {}

  std::optional<Decoded> find(uint64_t blocknr, const std::shared_ptr<const AlignedBuffer>& image,
                              uint64_t tag) const {
    std::lock_guard lock(mu_);
    auto it = entries_.find(blocknr);
    if (it == entries_.end() || it->second.tag != tag || it->second.image.lock() != image) return std::nullopt;
    return it->second.value;
  }

  void remember(uint64_t blocknr, const std::shared_ptr<const AlignedBuffer>& image, uint64_t tag,
                const Decoded& value) {
    std::lock_guard lock(mu_);
    if (entries_.size() >= capacity_ && !entries_.contains(blocknr)) make_room_locked();
    entries_.insert_or_assign(blocknr, Entry{image, tag, value});
  }

  size_t size() const {
    std::lock_guard lock(mu_);
    return entries_.size();
  }

 private:
  struct Entry {
    std::weak_ptr<const AlignedBuffer> image;
    uint64_t tag;
    Decoded value;
  };

  // Entries of images the block cache has let go come first; if every image is still
  // alive, an arbitrary quarter goes (they decode again on their next use).
  void make_room_locked() {
    std::erase_if(entries_, [](const auto& kv) { return kv.second.image.expired(); });
    for (auto it = entries_.begin(); it != entries_.end() && entries_.size() > capacity_ * 3 / 4;) {
      it = entries_.erase(it);
    }
  }

  const size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Entry> entries_;
};

}  // namespace lunfs

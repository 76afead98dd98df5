// The metadata block cache: sealed images of metadata blocks by block number. A miss asks
// the MetadataLog first (a block may be committed to the journal but not yet written home)
// and then reads the home location. Blocks enter the cache clean (after commit); a
// transaction keeps its own dirty copies until it commits. Data blocks never enter it:
// file data goes straight between the caller's buffers and the device.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "fs/aligned_buffer.h"
#include "fs/block_device.h"
#include "fs/metadata_log.h"

namespace lunfs {

using BlockRef = std::shared_ptr<const AlignedBuffer>;

class BlockCache {
 public:
  BlockCache(BlockDevice& dev, MetadataLog& log, uint32_t block_size, size_t max_blocks)
      : dev_(dev), log_(log), block_size_(block_size), max_blocks_(max_blocks) {}

  Result<BlockRef> get(uint64_t blocknr);
  void put(uint64_t blocknr, BlockRef image);
  void drop(uint64_t blocknr);
  void clear();
  uint32_t block_size() const { return block_size_; }
  size_t size() const;

 private:
  BlockDevice& dev_;
  MetadataLog& log_;
  const uint32_t block_size_;
  const size_t max_blocks_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, BlockRef> blocks_;
};

}  // namespace lunfs

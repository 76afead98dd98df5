// The metadata block cache: sealed images of metadata blocks by block number. A miss asks
// the MetadataLog first (a block may be committed to the journal but not yet written home)
// and then reads the home location. Blocks enter the cache clean (after commit); a
// transaction keeps its own dirty copies until it commits. Data blocks never enter it:
// file data goes straight between the caller's buffers and the device.
//
// Eviction is CLOCK (second chance): a block read again since the hand last passed it
// stays, so the blocks every operation walks (hash tables, extent nodes, bitmaps, busy
// leaves) survive a stream of blocks written once (the images of newly created inodes).
// The cache also hands out the buffers images are built in (BlockImagePool), so evicted
// and superseded images are recycled instead of freed.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "fs/device/aligned_buffer.h"
#include "fs/device/block_device.h"
#include "fs/core/block_image_pool.h"
#include "fs/metadata_log.h"

namespace lunfs {

using BlockRef = std::shared_ptr<const AlignedBuffer>;

class BlockCache {
 public:
  BlockCache(BlockDevice& dev, MetadataLog& log, uint32_t block_size, size_t max_blocks);

  Result<BlockRef> get(uint64_t blocknr);
  void put(uint64_t blocknr, BlockRef image);
  void drop(uint64_t blocknr);
  void clear();
  uint32_t block_size() const { return pool_.block_size(); }
  size_t size() const;
  // A zeroed buffer of one block to encode a new image into.
  std::shared_ptr<AlignedBuffer> new_image() { return pool_.zeroed(); }

 private:
  struct Slot {
    uint64_t blocknr = 0;
    BlockRef image;  // null: the slot is free
    bool referenced = false;
  };
  // Stores a block the cache does not hold yet. It enters unreferenced: a block written
  // or read once goes at the hand's next pass unless it is used again before.
  void insert_locked(uint64_t blocknr, BlockRef image);
  // The slot the next block goes into: a free one, else the first unreferenced one at the
  // hand (clearing reference bits on the way), whose block is evicted.
  size_t claim_slot_locked();

  BlockDevice& dev_;
  MetadataLog& log_;
  const size_t max_blocks_;
  BlockImagePool pool_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, size_t> index_;  // block number -> slot
  std::vector<Slot> slots_;
  std::vector<size_t> free_slots_;
  size_t hand_ = 0;
};

}  // namespace lunfs

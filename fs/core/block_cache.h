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
//
// Every cached image is covered by a glock, and must go when this node gives that glock
// back (glops.cpp). Blocks that belong to an inode without being its inode block (extent
// nodes, directory hash and leaf blocks, xattr blocks) name their owner in their header,
// so the cache files each image under its owner as it enters and drop_owned() forgets
// them all on the inode's demote, without walking the inode's structures.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
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
  // Drops every cached block whose header names inode `owner` as its owner.
  void drop_owned(uint64_t owner);
  // The newest image of `blocknr` (the log's, else the home location's), neither taken
  // from the cache nor kept in it: for a block this node holds no glock on.
  Result<BlockRef> read_uncached(uint64_t blocknr);
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
    uint64_t owner = 0;  // the inode the block belongs to (owned block types), else 0
  };
  // Files the slot's image under the owner its header names (if any) / takes it out.
  void own_locked(Slot& s);
  void disown_locked(const Slot& s);
  // Empties slot i (its block leaves the index).
  void free_slot_locked(size_t i);
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
  std::unordered_map<uint64_t, std::unordered_set<uint64_t>> owned_;  // owner inode -> blocks
  std::vector<Slot> slots_;
  std::vector<size_t> free_slots_;
  size_t hand_ = 0;
};

}  // namespace lunfs

// Block allocation from resource groups (decision 3). Each node prefers "its" resource
// groups (slot-based), so nodes of a cluster allocate without contending for rgrp glocks.
// Allocations look for a free run at a goal block (the block after the file's previous
// extent), so sequential writes produce contiguous extents. Freed blocks are free in the
// bitmap at once and may be handed out by the next allocation.
//
// The rgrp headers and bitmaps are decoded in memory; the allocator joins each
// transaction that changes them and encodes the changed blocks at commit (and reloads
// them from the cache on rollback). It also keeps this node's statfs delta.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <vector>

#include "fs/glock.h"
#include "fs/rgrp_format.h"
#include "fs/slot_format.h"
#include "fs/superblock.h"
#include "fs/transaction.h"

namespace lunfs {

struct AllocStats {
  uint64_t data_blocks = 0;
  uint64_t free_blocks = 0;
  uint64_t inodes = 0;  // dinodes + unlinked
};

class Allocator final : public TxnParticipant {
 public:
  // `withdraw` is called with a message when a shared structure is found damaged.
  Allocator(const ondisk::Superblock& sb, BlockCache& cache, GlockTable& glocks, uint32_t slot,
            std::function<void(const std::string&)> withdraw);

  // Reads every rgrp header and this slot's statfs delta.
  Status load();

  // A run of 1..want free blocks, preferring one that starts at `goal` (0 = anywhere in
  // this node's preferred groups). The blocks become "used".
  struct Run {
    uint64_t start;
    uint32_t length;
  };
  Result<Run> alloc_blocks(Transaction& txn, uint64_t goal, uint32_t want);
  // One inode block (state "inode"); `generation` receives its new generation number.
  Result<uint64_t> alloc_inode(Transaction& txn, uint64_t goal, uint64_t* generation);
  Status free_blocks(Transaction& txn, uint64_t start, uint64_t length);
  // An inode block (state inode or unlinked) back to free.
  Status free_inode(Transaction& txn, uint64_t block);
  // An inode whose last link went while it is still open.
  Status mark_unlinked(Transaction& txn, uint64_t block);
  // Whether `block` is an inode (state inode or unlinked): a stale inode number (a freed
  // inode whose old image is still on disk) must not be read as a live inode.
  Result<bool> is_inode(uint64_t block);
  // Inodes in state "unlinked" (left by a crash or an unclean unmount).
  Result<std::vector<uint64_t>> unlinked_inodes();

  AllocStats stats() const;

  void encode_into(Transaction& txn) override;
  void rollback() override;

 private:
  struct Rgrp {
    ondisk::RgrpLocation loc;
    ondisk::RgrpHeader header;
    std::vector<uint8_t> bits;  // loaded on first use
    bool loaded = false;
    bool damaged = false;
    std::set<uint32_t> dirty_bitmaps;
    bool dirty = false;
    uint32_t next_hint = 0;  // where the last allocation ended
    ondisk::BlockState state(uint32_t i) const {
      return static_cast<ondisk::BlockState>((bits[i / 4] >> (i % 4 * 2)) & 3);
    }
    void set(uint32_t i, ondisk::BlockState s);
  };

  Status lock_rgrp(Transaction& txn, uint32_t index);
  Status load_bitmaps(Rgrp& r);
  Status read_header(Rgrp& r);
  // Moves blocks [start, start+length) (one rgrp) from any state in `from_mask`
  // (bit 1<<state) to `to`; anything else is an impossible free, reported as damage.
  Status change_state(Transaction& txn, uint64_t start, uint64_t length, unsigned from_mask,
                      ondisk::BlockState to);
  void touch(Transaction& txn, Rgrp& r, uint32_t first, uint32_t last);
  // A free run in rgrp `r` starting the search at data-block offset `from`.
  bool find_run(Rgrp& r, uint32_t from, uint32_t want, uint32_t* start, uint32_t* len);
  uint32_t preferred_rgrp() const;
  Status damaged(Rgrp& r, const Status& why);

  const ondisk::Superblock& sb_;
  const ondisk::Geometry& g_;
  BlockCache& cache_;
  GlockTable& glocks_;
  const uint32_t slot_;
  std::function<void(const std::string&)> withdraw_;
  std::vector<Rgrp> rgrps_;
  ondisk::Statfs delta_;
  bool delta_dirty_ = false;
};

}  // namespace lunfs

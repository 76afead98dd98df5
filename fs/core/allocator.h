// Block allocation from resource groups (architecture decision 3, docs/decisions.md). Each
// node prefers "its" resource groups (slot-based), so nodes of a cluster allocate without
// contending for rgrp glocks.
// Allocations look for a free run at a goal block (the block after the file's previous
// extent), so sequential writes produce contiguous extents. Freed blocks are free in the
// bitmap at once and may be handed out by the next allocation.
//
// The rgrp headers and bitmaps are decoded in memory; the allocator joins each
// transaction that changes them and encodes the changed blocks at commit (and reloads
// them from the cache on rollback). It also keeps this node's statfs delta.
//
// The decoded copy of a group is valid only while this node holds the group's glock:
// until the first time it does, and from the glock's demote on (invalidate()), the group
// is "stale", and the next holder re-reads header and bitmaps from the LUN. Where the
// allocator answers without taking the glock (is_inode, stats), a stale group is read
// past the cache, as the other nodes last wrote it home.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <set>
#include <vector>

#include "fs/core/glock.h"
#include "fs/format/rgrp_format.h"
#include "fs/format/slot_format.h"
#include "fs/format/superblock.h"
#include "fs/core/transaction.h"

namespace lunfs {

struct AllocStats {
  uint64_t data_blocks = 0;
  int64_t free_blocks = 0;
  int64_t inodes = 0;  // dinodes + unlinked
};

// Freed blocks are reused only after the journal commit that frees them is durable
// (deferred reuse, as jbd2/ext4): until then they are free in the bitmaps — on disk and in
// memory, and in stats() — but "pinned", so no allocation hands them out. A crash before
// that commit brings the old owner back with its blocks, so new file data (written
// straight to the LUN, not journaled) must not be in them yet, nor may a checkpoint of the
// old owner's logged images land on a reused block. When nothing else is free, an
// allocation commits the log and takes the pinned blocks, so a pinned block never causes
// ENOSPC — except for blocks the allocating transaction itself freed.
class Allocator final : public TxnParticipant {
 public:
  // `withdraw` is called with a message when a shared structure is found damaged.
  Allocator(const ondisk::Superblock& sb, BlockCache& cache, MetadataLog& log, GlockTable& glocks,
            uint32_t slot, std::function<void(const std::string&)> withdraw);

  // Reads every rgrp header and this slot's statfs delta.
  Status load();

  // After an allocator call failed with kGlockRetry on this thread: the rgrp glock it
  // could not take without waiting (lock order rule 2, glock.h). Cleared by the call.
  static std::optional<GlockName> take_wanted_glock();

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
  // Inodes in state "unlinked" (open when their last link went, and not freed since: a
  // crash, an unclean unmount, or a node that went). A group this node does not hold is
  // read past the cache, as its last holder wrote it home: candidates only, which the
  // caller checks under each inode's glock.
  Result<std::vector<uint64_t>> unlinked_inodes();
  // This node gave the group's glock back (glops.cpp): forget its decoded state and cached
  // blocks. The log was checkpointed first, so every block this node freed is reusable.
  void invalidate(uint32_t index);

  // The file system's counts (statfs, docs/format.md "Statfs"): the master block plus
  // this node's delta as it is in memory plus the other slots' deltas as the LUN holds
  // them. The caller holds the statfs glock (shared at least), under which the master is
  // current. Free blocks count pinned ones: they become allocatable with the next commit
  // (the timer commits within seconds, and an allocation that needs them commits at once).
  Result<AllocStats> stats();
  // Adds this node's delta to the master and zeroes the delta, both in `txn` (the caller
  // holds the statfs glock exclusively). False when there is nothing to fold.
  Result<bool> fold_delta(Transaction& txn);
  bool fold_delta_needed() const { return delta_.free_blocks != 0 || delta_.dinodes != 0; }
  // Blocks freed but not reusable yet (tests, statistics).
  uint64_t pinned_blocks() const { return pinned_total_; }

  void encode_into(Transaction& txn) override;
  void rollback() override;
  void committed(uint64_t log_sequence) override;

 private:
  struct Rgrp {
    ondisk::RgrpLocation loc;
    ondisk::RgrpHeader header;
    std::vector<uint8_t> bits;  // loaded on first use
    bool loaded = false;
    bool damaged = false;
    bool stale = true;  // not read under the group's glock (see the top of this file)
    std::set<uint32_t> dirty_bitmaps;
    bool dirty = false;
    uint32_t next_hint = 0;  // where the last allocation ended
    // Free blocks not to be handed out yet, one bit per data block (sized at first pin).
    std::vector<uint64_t> pinned;
    uint32_t pinned_count = 0;
    ondisk::BlockState state(uint32_t i) const {
      return static_cast<ondisk::BlockState>((bits[i / 4] >> (i % 4 * 2)) & 3);
    }
    void set(uint32_t i, ondisk::BlockState s);
    bool is_pinned(uint32_t i) const { return pinned_count && (pinned[i / 64] >> (i % 64) & 1); }
    bool allocatable(uint32_t i) const { return state(i) == ondisk::BlockState::kFree && !is_pinned(i); }
    void pin(uint32_t i, bool on);
  };
  // Blocks freed by one transaction, waiting for its commit.
  struct Pin {
    uint64_t sequence;  // the log's transaction that frees them; 0 = not submitted yet
    uint64_t start;
    uint64_t length;
  };

  Status lock_rgrp(Transaction& txn, uint32_t index);
  Status load_bitmaps(Rgrp& r);
  Status read_header(Rgrp& r);
  // Re-reads a stale group's header (its bitmaps on next use), the caller holding its glock.
  Status refresh(Rgrp& r);
  // A stale group's header or the state of one of its blocks, read past the cache.
  Result<ondisk::RgrpHeader> header_on_disk(const Rgrp& r);
  Result<ondisk::BlockState> state_on_disk(const Rgrp& r, uint32_t i);
  // Moves blocks [start, start+length) (one rgrp) from any state in `from_mask`
  // (bit 1<<state) to `to`; anything else is an impossible free, reported as damage.
  Status change_state(Transaction& txn, uint64_t start, uint64_t length, unsigned from_mask,
                      ondisk::BlockState to);
  void touch(Transaction& txn, Rgrp& r, uint32_t first, uint32_t last);
  // A free run in rgrp `r` starting the search at data-block offset `from`.
  bool find_run(Rgrp& r, uint32_t from, uint32_t want, uint32_t* start, uint32_t* len);
  uint32_t preferred_rgrp() const;
  Status damaged(Rgrp& r, const Status& why);
  // Pins freed blocks until the current transaction's commit is durable.
  void pin_freed(uint64_t start, uint64_t length);
  void set_pins(const Pin& p, bool on);
  // Returns blocks whose freeing commit is durable to the allocatable pool.
  void release_durable();
  // One pass over the rgrps for alloc_blocks.
  Result<Run> try_alloc(Transaction& txn, uint64_t goal, uint32_t want);

  const ondisk::Superblock& sb_;
  const ondisk::Geometry& g_;
  BlockCache& cache_;
  MetadataLog& log_;
  GlockTable& glocks_;
  const uint32_t slot_;
  std::function<void(const std::string&)> withdraw_;
  std::vector<Rgrp> rgrps_;
  ondisk::Statfs delta_;
  bool delta_dirty_ = false;
  std::deque<Pin> pins_;             // submitted, in sequence order
  std::vector<Pin> pending_pins_;    // freed by the open transaction
  uint64_t pinned_total_ = 0;
};

}  // namespace lunfs

// The extent tree of one inode (bmap): maps logical file blocks to physical runs. The root
// lives in the inode's content area, deeper nodes in blocks of their own; a full node
// splits in two and a full root pushes its entries down into a new block (the tree grows
// at the top, as ext4's). The first child of every index node starts at its parent's
// lower bound, so every logical block has exactly one leaf to go to.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "fs/core/allocator.h"
#include "fs/format/extent_format.h"
#include "fs/core/inode.h"
#include "fs/device/io_queue.h"
#include "fs/core/transaction.h"

namespace lunfs {

struct Volume;

// A run of logical blocks and where it lives: physical 0 = hole.
struct Segment {
  uint64_t logical;
  uint64_t length;
  uint64_t physical;
  bool unwritten;
};

// The device transfers of mapped segments, `buf` holding logical blocks from `first` on.
// Reads zero-fill the holes and unwritten blocks of `buf` instead of reading them; writes
// expect every segment to be mapped.
std::vector<IoTransfer> device_reads(std::span<const Segment> segs, uint64_t first, uint32_t bs,
                                     std::span<std::byte> buf);
std::vector<IoTransfer> device_writes(std::span<const Segment> segs, uint64_t first, uint32_t bs,
                                      std::span<std::byte> buf);

class ExtentTree {
 public:
  // `txn` may be null for read-only use (reads then go to the cache).
  ExtentTree(Volume& vol, CoreInode& inode, Transaction* txn) : vol_(vol), ino_(inode), txn_(txn) {}

  // The extent holding `lb`, or else the first extent after it; nullopt past the last.
  Result<std::optional<ondisk::Extent>> find(uint64_t lb);
  // Maps the unmapped range e.logical..+e.length to e.physical (merging with neighbours).
  Status insert(const ondisk::Extent& e);
  // Unmaps [lb, lb+count); the physical runs that were mapped go to `freed` (the caller
  // frees or reuses them).
  Status remove(uint64_t lb, uint64_t count, std::vector<ondisk::Extent>* freed);
  // Every extent, in order.
  Result<std::vector<ondisk::Extent>> all();
  // Frees every tree node block (not the data) and leaves an empty root.
  Status clear_nodes();
  // A good physical block to allocate for logical block `lb` (after its predecessor).
  uint64_t goal_for(uint64_t lb);
  // The mapping of logical blocks [first, first+count) as consecutive segments, holes included.
  Result<std::vector<Segment>> map_range(uint64_t first, uint64_t count);

 private:
  struct Level {
    ondisk::ExtentNode node;
    uint64_t blocknr = 0;  // 0 = the root in the inode
    size_t index = 0;      // child taken (index levels)
  };
  using Path = std::vector<Level>;

  Result<std::shared_ptr<const ondisk::ExtentNode>> read_node(uint64_t blocknr);
  Result<ondisk::ExtentNode> root();
  // The decoded root itself (the inode keeps it), valid until the tree changes.
  Result<const ondisk::ExtentNode*> root_node();
  // Descends to the leaf for `lb`; `hi` receives the leaf's exclusive upper bound.
  Status descend(uint64_t lb, Path& path, uint64_t* hi);
  // The same for reading only: the leaf itself, not a copy (a copy of a full leaf and its
  // allocation were the largest CPU item of a thin image's first pass). Valid until the
  // tree changes; `hold` keeps a non-root leaf alive.
  Result<const ondisk::ExtentNode*> peek_leaf(uint64_t lb, uint64_t* hi,
                                              std::shared_ptr<const ondisk::ExtentNode>& hold);
  Status write_level(const Level& l);
  size_t capacity(const Level& l) const;
  // Splits overfull nodes from `level` up to the root, writing what changes.
  Status fix_overflow(Path& path, size_t level);
  Status collect_nodes(const ondisk::ExtentNode& node, std::vector<uint64_t>& out);

  Volume& vol_;
  CoreInode& ino_;
  Transaction* txn_;
};

}  // namespace lunfs

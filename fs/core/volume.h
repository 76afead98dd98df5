// The state one mount shares between the core's modules: device, superblock, metadata log,
// block cache, glocks, allocator, inode cache, and the withdraw flag. Modules take a
// Volume& instead of a dozen references.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "fs/core/allocator.h"
#include "fs/core/block_cache.h"
#include "fs/device/buffer_pool.h"
#include "fs/core/decoded_memo.h"
#include "fs/format/dir_format.h"
#include "fs/format/extent_format.h"
#include "fs/core/glock.h"
#include "fs/device/io_queue.h"
#include "fs/metadata_log.h"
#include "fs/format/superblock.h"
#include "fs/core/transaction.h"

namespace lunfs {

class InodeCache;

struct Volume {
  Volume(BlockDevice& dev, MetadataLog& log, const ondisk::Superblock& sb, LockManager& lm,
         uint32_t slot, bool read_only);

  BlockDevice& dev;
  MetadataLog& log;
  const ondisk::Superblock sb;
  const ondisk::Geometry& g;
  const uint32_t bs;
  const uint32_t slot;
  const bool read_only;
  BlockCache cache;
  // Extent nodes as decoded from the cache's images, keyed by the image (bmap.cpp).
  // Shared and immutable: a read-only walk looks at them without copying (bmap.cpp: peek_leaf).
  DecodedMemo<std::shared_ptr<const ondisk::ExtentNode>> extent_nodes{4096};
  // Directory leaves and hash-table blocks, the same way (dir.cpp).
  DecodedMemo<std::shared_ptr<const ondisk::DirLeaf>> dir_leaves{4096};
  DecodedMemo<std::shared_ptr<const ondisk::DirHashBlock>> dir_hash_blocks{1024};
  GlockTable glocks;
  Allocator alloc;
  std::unique_ptr<InodeCache> inodes;
  std::atomic<uint64_t> next_sequence{1};
  uint32_t max_dir_depth = 24;  // MountOptions::max_dir_depth
  std::atomic<bool> withdrawn{false};
  // Serialises metadata changes and cache lookups of this node. Cluster-wide exclusion is
  // the glocks' job; this mutex only protects the in-memory structures. No blocking glock
  // request is made while it is held (glock.h, lock order rule 3).
  MetaMutex meta_mu;
  // Asynchronous data transfers (direct_io.cpp): made on first use, so tools that mount
  // the core (fsck, tests) start no completion thread. The pool outlives the queue, whose
  // transfers in flight hold its buffers.
  BufferPool buffers;
  std::once_flag io_once;
  std::unique_ptr<IoQueue> io;
  std::function<void(const std::string&)> logger;  // one line per event; stderr by default
  // The frontend's: another node wants to free inode `ino` (no links left) that this node
  // still uses, and the kernel may hold it only through the name it last looked up
  // (FileSystem::set_iopen_wanted_hook). Guarded by meta_mu.
  std::function<void(uint64_t ino, uint64_t parent, const std::string& name)> iopen_wanted;

  void log_line(const std::string& line) const;
  // Damage in a shared structure: no more writes from this node.
  void withdraw(const std::string& why);
  // EROFS when mounted read-only or withdrawn.
  Status check_writable() const;
  std::unique_ptr<Transaction> begin() {
    return std::make_unique<Transaction>(cache, log, next_sequence++);
  }
};

}  // namespace lunfs

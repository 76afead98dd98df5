// In-memory inodes and the inode cache. A CoreInode holds the decoded on-disk inode and
// the number of references the frontend holds (kernel lookups, which cover open files);
// it joins a transaction when changed and is encoded into its block at commit. Timestamp
// updates from overwrites only mark it "times dirty", written at the next transaction,
// fsync or sync, so overwriting an allocated file costs no metadata I/O per write.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <shared_mutex>
#include <unordered_map>

#include "fs/format/extent_format.h"
#include "fs/format/inode_format.h"
#include "fs/core/glock.h"
#include "fs/core/transaction.h"

namespace lunfs {

struct Volume;

class CoreInode final : public TxnParticipant {
 public:
  CoreInode(Volume& vol, uint64_t ino) : vol_(vol), ino_(ino) {}
  uint64_t ino() const { return ino_; }
  ondisk::Inode d;            // the inode as it will be written
  uint64_t refs = 0;          // frontend references (nlookup)
  // While refs > 0: the iopen glock held shared, so that no other node frees the inode
  // while this node uses it (decision 11; FileSystem::take_reference).
  GlockPin iopen;
  // The name the frontend's last entry for this inode came through (the kernel holds the
  // inode through it): what another node asks the kernel to drop (glops.cpp, iopen).
  uint64_t entry_parent = 0;
  std::string entry_name;
  bool times_dirty = false;   // atime/mtime/ctime changed without a transaction
  bool freed = false;         // the block was freed; the object is a tombstone
  bool stale = false;         // the glock went to another node: `d` is re-read on next use
  // The extent root as last decoded from d.content, and the content it came from: every
  // walk of the tree starts at the root, and a large file's root holds a few hundred index
  // entries, each checked against the geometry (bmap.cpp). Guarded like d (meta_mu).
  std::vector<uint8_t> decoded_root_source;
  std::optional<ondisk::ExtentNode> decoded_root;

  uint32_t type() const { return d.mode & S_IFMT; }
  bool is_dir() const { return type() == S_IFDIR; }
  bool is_reg() const { return type() == S_IFREG; }
  // Marks the inode changed in `txn` (encoded at commit).
  void dirty(Transaction& txn) { txn.join(this); }

  void encode_into(Transaction& txn) override;
  void rollback() override;
  // Re-reads the inode from the cached block.
  Status load();

 private:
  Volume& vol_;
  const uint64_t ino_;
};

class InodeCache {
 public:
  explicit InodeCache(Volume& vol) : vol_(vol) {}
  // The inode, read on first use. EIO (and a log line) when its block is damaged.
  Result<std::shared_ptr<CoreInode>> get(uint64_t ino);
  // A freshly allocated inode (not read from disk).
  std::shared_ptr<CoreInode> create(uint64_t ino);
  void forget(uint64_t ino);
  // The inode's glock was given back: its decoded state goes. An inode the frontend still
  // references stays (its references are this node's, not the disk's), marked stale.
  void invalidate(uint64_t ino);
  // Writes the inode's lazily kept times (inode.h), before its glock is given back.
  Status sync_times(uint64_t ino);
  // Every cached inode back to its last committed image (keeping lazily kept times): after
  // an operation gave up half-way to retry (kGlockRetry), in-memory changes it made before
  // the inode joined its transaction must not survive the rollback.
  void reload_all();
  // The name of `ino`'s last entry, if it is cached and has one.
  bool last_entry(uint64_t ino, uint64_t* parent, std::string* name) const;
  // Lets go of every iopen glock pin (unmount: references the kernel never forgot).
  void release_iopen_pins();
  // Inodes with timestamps changed outside transactions.
  std::vector<std::shared_ptr<CoreInode>> times_dirty();
  size_t size() const { return map_.size(); }

 private:
  Volume& vol_;
  std::unordered_map<uint64_t, std::shared_ptr<CoreInode>> map_;
};

// The time now, as stored in inodes.
ondisk::Timespec now_timespec();

}  // namespace lunfs

// The file-system core's public face: one mounted lunfs, with the operations a frontend
// (FUSE, tests) needs, in POSIX terms (inode numbers, names, errno-style errors). Every
// operation takes its glocks through the GlockTable (so through the LockManager) and
// changes metadata only inside a Transaction. Implementation is split by concept:
// filesystem.cpp (mount, namespace operations, attributes), file_io.cpp (read/write),
// truncate.cpp (truncate, fallocate, lseek), rename.cpp, xattr.cpp.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "fs/device/block_device.h"
#include "fs/format/extent_format.h"
#include "fs/core/glock.h"
#include "fs/core/inode.h"
#include "fs/metadata_log.h"
#include "fs/result.h"

namespace lunfs {

class Directory;
class ExtentTree;
struct Volume;
struct Segment;
class IoQueue;

struct MountOptions {
  bool read_only = false;
  bool noatime = false;
  uint32_t slot = 0;  // journal slot (statfs delta, preferred rgrps)
  // Free the inodes left unlinked-while-open by earlier mounts (free_unused_orphans) as
  // the mount starts. Cluster mounts leave it to journal recovery, which runs it once a
  // dead node's locks are gone (fuse/node_recovery.h).
  bool free_orphans = true;
  size_t cache_blocks = 65536;
  // How often a thread folds this node's statfs delta into the master (0: only at
  // unmount). Cluster mounts fold every second, so that `df` on any node is exact within
  // one second; a single-host mount's own delta is counted directly.
  std::chrono::milliseconds statfs_fold_interval{0};
  // The deepest hash table a directory grows to (at least the depth it starts with); full
  // leaves chain beyond it. Below ondisk::kMaxDirDepth only to reach chains in tests.
  uint32_t max_dir_depth = 24;
  std::function<void(const std::string&)> logger;  // default: stderr
};

struct Attr {
  uint64_t ino = 0;
  uint32_t mode = 0, uid = 0, gid = 0, nlink = 0;
  uint64_t size = 0;
  uint64_t blocks512 = 0;  // st_blocks: 512-byte units, the inode block included
  uint64_t rdev = 0;
  uint64_t generation = 0;
  uint32_t blksize = 0;
  ondisk::Timespec atime, mtime, ctime;
};

struct Cred {
  uint32_t uid = 0, gid = 0;
  uint32_t umask = 0;  // applied unless the directory has a default ACL
};

// setattr: only the fields that are set change.
struct SetAttr {
  std::optional<uint32_t> mode, uid, gid;
  std::optional<uint64_t> size;
  std::optional<ondisk::Timespec> atime, mtime;  // UTIME_NOW is the caller's job
  std::optional<ondisk::Timespec> ctime;
};

struct FsStat {
  uint64_t block_size = 0, blocks = 0, free_blocks = 0, files = 0, free_files = 0;
  uint32_t name_max = 255;
};

struct DirListing {
  std::string name;
  uint64_t ino;
  uint8_t type;
  uint64_t next_offset;
};

// fallocate modes (the FALLOC_FL_* values).
inline constexpr int kFallocKeepSize = 0x01;
inline constexpr int kFallocPunchHole = 0x02;
inline constexpr int kFallocZeroRange = 0x10;

class FileSystem {
 public:
  // Reads and checks the primary superblock (EMEDIUMTYPE: not lunfs; EUCLEAN: damaged).
  static Result<ondisk::Superblock> read_superblock(BlockDevice& dev);
  static Result<std::unique_ptr<FileSystem>> mount(BlockDevice& dev, MetadataLog& log, LockManager& lm,
                                                   const MountOptions& options);
  ~FileSystem();
  // Writes everything back and releases the glocks; further calls fail.
  Status unmount();

  uint64_t root() const;
  bool read_only() const;
  bool withdrawn() const;
  // Read-only from now on (Volume::withdraw): the lock space failed, or the node was fenced.
  void withdraw(const std::string& why);
  const ondisk::Superblock& superblock() const;

  // Whether a call that returns an entry also takes a frontend reference on its inode (one
  // FUSE nlookup, dropped by forget()). kHold takes it under the lock that found or made the
  // name, so no unlink can free the inode between the entry and the reference; the
  // frontend gets every entry this way (a separate hold() would come too late).
  enum class Ref { kNone, kHold };

  Result<Attr> getattr(uint64_t ino);
  // A damaged inode is EIO, with the directory and the name in the message.
  Result<Attr> lookup(uint64_t dir, const std::string& name, Ref ref = Ref::kNone);
  Result<Attr> mknod(uint64_t dir, const std::string& name, uint32_t mode, uint64_t rdev, const Cred& cred,
                     Ref ref = Ref::kNone);
  Result<Attr> mkdir(uint64_t dir, const std::string& name, uint32_t mode, const Cred& cred, Ref ref = Ref::kNone);
  Result<Attr> symlink(uint64_t dir, const std::string& name, const std::string& target, const Cred& cred,
                       Ref ref = Ref::kNone);
  Result<std::string> readlink(uint64_t ino);
  Result<Attr> link(uint64_t ino, uint64_t dir, const std::string& name, Ref ref = Ref::kNone);
  Status unlink(uint64_t dir, const std::string& name);
  Status rmdir(uint64_t dir, const std::string& name);
  // flags: RENAME_NOREPLACE (1), RENAME_EXCHANGE (2).
  Status rename(uint64_t olddir, const std::string& oldname, uint64_t newdir, const std::string& newname,
                unsigned flags);
  Result<Attr> setattr(uint64_t ino, const SetAttr& changes);
  // Entries from `offset` (0 = start, including "." and ".."); fn returns false when full.
  Status readdir(uint64_t dir, uint64_t offset, const std::function<bool(const DirListing&)>& fn);

  // `direct`: the file is open for direct I/O (O_DIRECT). Its reads, and its overwrites
  // of written blocks, hold the inode glock in the deferred mode that several nodes share
  // (decision 6); buffered reads hold it shared; writes that allocate, convert or extend
  // hold it exclusively.
  Result<size_t> read(uint64_t ino, uint64_t offset, std::span<std::byte> buf, bool direct = false);
  Result<size_t> write(uint64_t ino, uint64_t offset, std::span<const std::byte> buf, bool direct = false);
  Status fallocate(uint64_t ino, int mode, uint64_t offset, uint64_t length);
  // SEEK_DATA / SEEK_HOLE.
  Result<uint64_t> lseek(uint64_t ino, uint64_t offset, int whence);
  // The file's extents (FIEMAP): what tests and tools use to see the layout.
  Result<std::vector<ondisk::Extent>> extents(uint64_t ino);
  Result<size_t> copy_range(uint64_t ino_in, uint64_t off_in, uint64_t ino_out, uint64_t off_out, size_t len);

  Result<std::string> getxattr(uint64_t ino, const std::string& name);
  Status setxattr(uint64_t ino, const std::string& name, const std::string& value, int flags);
  Result<std::vector<std::string>> listxattr(uint64_t ino);
  Status removexattr(uint64_t ino, const std::string& name);

  // Under the statfs glock (shared): the master plus the nodes' deltas.
  Result<FsStat> statfs();
  // Folds this node's statfs delta into the master under the statfs glock (exclusive), in
  // one transaction. No lock message when the delta is zero.
  Status fold_statfs();
  // Frees every unlinked inode that no node uses any more (decision 11): after a dead
  // node's recovery, the files it had open after their last unlink. Each candidate is
  // checked and freed under its inode's exclusive glock, and only when its iopen glock is
  // free on every node (NOQUEUE, as the last user's forget asks it); one in use stays for
  // its last user. How many were freed.
  Result<size_t> free_unused_orphans();
  Status fsync(uint64_t ino, bool datasync);
  Status sync();
  // Records an atime update for a read (relatime unless mounted noatime).
  void touch_atime(uint64_t ino);

  // The FUSE data path (direct_io.cpp). Block-aligned reads, and overwrites of written
  // blocks, go to the device's IoQueue and complete on its thread, so the caller's thread is
  // free for the next request; anything else runs read()/write() and completes before the
  // call returns. Reads update atime like read() + touch_atime(). The span a read's
  // completion receives is valid only during the call.
  using ReadCompletion = std::function<void(Result<std::span<const std::byte>>)>;
  using WriteCompletion = std::function<void(Result<size_t>)>;
  void read_async(uint64_t ino, uint64_t offset, size_t size, ReadCompletion done, bool direct = false);
  void write_async(uint64_t ino, uint64_t offset, std::span<const std::byte> data, WriteCompletion done,
                   bool direct = false);
  // Returns when every asynchronous transfer has completed (before the frontend goes away).
  void drain_io();

  // The glocks this node has, one line each (a hang's post-mortem; `lunfs status` later).
  std::string glock_dump();

  // The frontend's references (FUSE lookup counts). An inode without links is freed when
  // its last reference goes. hold() is for an inode already referenced (tests' open
  // files); entries come with theirs (Ref::kHold).
  void hold(uint64_t ino);
  Status forget(uint64_t ino, uint64_t count);
  // Called (on a lock manager thread) when another node wants to free an inode without
  // links that this node still uses, with the name this node's last entry for it came
  // through: a frontend whose kernel caches that name lets it go (FUSE notify_delete), and
  // the kernel's forget then frees the inode here (decision 11).
  void set_iopen_wanted_hook(std::function<void(uint64_t ino, uint64_t parent, const std::string& name)> hook);

 private:
  // What unlink and rmdir hold while they remove `name` from `dir`: both glocks (parent
  // before child), then meta_mu, the two inodes, and the directory that looked the name
  // up (its decoded bucket serves the removal).
  struct Removal {
    std::vector<GlockHolder> glocks;  // the directory's and the target's, in lock order
    std::unique_lock<MetaMutex> meta;
    std::shared_ptr<CoreInode> dir, target;
    std::unique_ptr<Directory> directory;
  };
  Result<Removal> lock_for_removal(uint64_t dir, const std::string& name);
  // The inode glocks of `inos` (duplicates and zeros skipped) in ascending order, the one
  // order every multi-inode operation uses (decision 10, glock.h).
  Result<std::vector<GlockHolder>> lock_inodes(std::vector<uint64_t> inos, GlockMode mode, unsigned flags = 0);
  // The inode `name` in `dir` names now (looked up under the directory's shared glock).
  Result<uint64_t> lookup_ino(uint64_t dir, const std::string& name);
  // Runs `op` until it no longer fails for want of an rgrp glock that could not be taken
  // under meta_mu (kGlockRetry): each round takes that glock first, with nothing else held,
  // so that the next round finds it cached (glock.h, lock order rule 2).
  template <class Op>
  auto retrying(Op&& op) -> decltype(op());
  // Takes (and lets go of, leaving it cached) the glock the last kGlockRetry asked for.
  Status acquire_wanted_glock();
  explicit FileSystem(std::unique_ptr<Volume> vol);
  Attr attr_of(const CoreInode& node) const;
  Result<std::shared_ptr<CoreInode>> inode(uint64_t ino);
  Result<std::shared_ptr<CoreInode>> dir_inode(uint64_t ino);
  // EISDIR / EINVAL unless `ino` is a regular file.
  Result<std::shared_ptr<CoreInode>> regular_file(uint64_t ino);
  // The segments of a write that only overwrites written blocks inside the file (its times
  // are stamped), or nullopt when the write must allocate, convert or extend (write_locked).
  Result<std::optional<std::vector<Segment>>> plan_overwrite(CoreInode& node, uint64_t offset, size_t size);
  // Writes `buf` at `offset` into the mapped, written blocks `segs` (an overwrite).
  Result<size_t> write_segments(const std::vector<Segment>& segs, uint64_t offset, std::span<const std::byte> buf);
  static GlockMode read_mode(bool direct) { return direct ? GlockMode::kDeferred : GlockMode::kShared; }
  // relatime (or nothing under noatime); the caller holds meta_mu.
  void note_access(CoreInode& node);
  IoQueue& io_queue();
  Result<Attr> create(uint64_t dir, const std::string& name, uint32_t mode, uint64_t rdev,
                      const std::string& symlink_target, const Cred& cred, Ref ref);
  // Drops a link of `node` (in a transaction that already removed the entry); see
  // free_or_orphan for `iopen_ex`.
  Status drop_link(Transaction& txn, CoreInode& node, GlockHolder* iopen_ex);
  // `node` has just lost its last link in `txn`. Freed at once when no node uses it: this
  // node holds no reference and the iopen glock is granted exclusively without waiting
  // (kept in *iopen_ex until the caller has committed and calls release_iopen). Else it
  // goes on the orphan list, and the last node to let go frees it (forget).
  Status free_or_orphan(Transaction& txn, CoreInode& node, GlockHolder* iopen_ex);
  // Ends what free_or_orphan held: the iopen glock goes back to the cluster at once.
  void release_iopen(uint64_t ino, GlockHolder& iopen_ex);
  // The iopen glock shared, pinned (decision 11): taken before an inode gets its first
  // frontend reference on this node, with the inode's glock held (so no other node can
  // reach the inode's last unlink in between) and meta_mu not.
  Result<GlockPin> pin_iopen(uint64_t ino);
  // Counts a frontend reference (meta_mu held); the inode keeps the first pin.
  void add_reference(CoreInode& node, GlockPin iopen, uint64_t parent = 0, const std::string& name = {});
  // Frees an inode with no links and no references: data, xattrs, the inode block.
  Status free_inode(Transaction& txn, CoreInode& node);
  Status truncate_blocks(Transaction& txn, CoreInode& node, uint64_t new_size);
  Status zero_range_on_disk(CoreInode& node, uint64_t offset, uint64_t length);
  Status unpack_inline(Transaction& txn, CoreInode& node);
  Status write_times(CoreInode& node);
  // The writes that change metadata; called with meta_mu held through `lock`, which
  // write_whole_blocks releases while the data moves.
  Result<size_t> write_locked(std::unique_lock<MetaMutex>& lock, CoreInode& node, uint64_t offset,
                              std::span<const std::byte> buf);
  Result<size_t> write_whole_blocks(std::unique_lock<MetaMutex>& lock, CoreInode& node, uint64_t offset,
                                    std::span<const std::byte> buf);
  // Whether a write ending at `end` keeps (or makes) the file's data inline.
  bool writes_inline(const CoreInode& node, uint64_t end) const;
  // The two transactions around the data of a whole-block write that allocates, converts
  // or extends (callers hold meta_mu for each): the first maps logical blocks
  // [first, first+count) with unwritten extents where there were holes and returns the
  // mapping; the second, once the data is on the device, marks them written and grows the
  // size to `end`.
  Result<std::vector<Segment>> map_for_write(CoreInode& node, uint64_t first, uint64_t count);
  Status finish_write(Transaction& txn, CoreInode& node, uint64_t first, uint64_t count, uint64_t end);
  // An allocating write of write_async whose data is on the device, waiting for its second
  // transaction, and what to do once that is committed (or failed).
  struct FinishingWrite {
    std::shared_ptr<CoreInode> node;
    uint64_t first, count, end;
    std::function<void(Status)> then;
  };
  // The IoQueue's reap hook: the second transactions of the writes that one reap completed,
  // as one transaction under one meta_mu acquisition (direct_io.cpp).
  void finish_reaped_writes();
  // Inline or layout-less files get an extent tree.
  Status ensure_extent_layout(Transaction& txn, CoreInode& node);
  // Unwritten extents in logical blocks [first, first+count) become written.
  Status mark_written(ExtentTree& tree, uint64_t first, uint64_t count);
  Result<size_t> write_inline(CoreInode& node, uint64_t offset, std::span<const std::byte> buf);
  // Allocates the holes in logical blocks [first, first+count) (unwritten: preallocation).
  Status allocate_range(Transaction& txn, CoreInode& node, uint64_t first, uint64_t count, bool unwritten);
  Status is_ancestor(uint64_t maybe_ancestor, uint64_t dir, bool* result);
  // rename() once every glock is held and meta_mu taken: `src_ino` is what `oldname`
  // names, `dst_ino` what `newname` names (0: nothing).
  Status rename_locked(uint64_t olddir, const std::string& oldname, uint64_t newdir, const std::string& newname,
                       unsigned flags, CoreInode& od, CoreInode& nd, uint64_t src_ino, uint64_t dst_ino);

  // The largest file: logical blocks must keep byte offsets below 2^63.
  uint64_t max_file_size() const;

  void fold_loop(std::chrono::milliseconds interval);

  // Declared before vol_: the IoQueue inside it runs finish_reaped_writes() until it is
  // destroyed.
  std::mutex finishing_mu_;
  std::vector<FinishingWrite> finishing_;  // guarded by finishing_mu_
  std::unique_ptr<Volume> vol_;
  bool mounted_ = true;
  std::mutex fold_mu_;
  std::condition_variable fold_cv_;
  bool fold_stopping_ = false;
  std::thread fold_thread_;
  bool noatime_ = false;
};

template <class Op>
auto FileSystem::retrying(Op&& op) -> decltype(op()) {
  for (;;) {
    auto result = op();
    if (result.is_ok() || result.err() != kGlockRetry) return result;
    LUNFS_TRY(acquire_wanted_glock());
  }
}

}  // namespace lunfs

// Mount, namespace operations and attributes of the core; see filesystem.h.
#include "fs/core/filesystem.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "fs/core/bmap.h"
#include "fs/device/aligned_buffer.h"
#include "fs/core/dir.h"
#include "fs/format/dir_format.h"
#include "fs/format/inode_format.h"
#include "fs/core/acl.h"
#include "fs/core/allocator.h"
#include "fs/core/volume.h"
#include "fs/core/xattr.h"

namespace lunfs {

using namespace ondisk;

namespace {

Status check_name(const std::string& name) {
  if (name.size() > kNameMaxBytes) return error(ENAMETOOLONG, "name longer than 255 bytes");
  if (!valid_entry_name(name)) return error(EINVAL, "invalid name '" + name + "'");
  return Status::ok();
}

GlockName inode_lock(uint64_t ino) { return {GlockType::kInode, ino}; }
GlockName iopen_lock(uint64_t ino) { return {GlockType::kIopen, ino}; }
GlockName statfs_lock() { return {GlockType::kStatfs, 0}; }

// A symlink target too long for the inode goes to data blocks mapped by an extent tree, as
// a regular file's bytes, zero-padded to whole blocks. The blocks are written before the
// transaction that maps them commits (ordered data); freeing the inode frees them as it
// frees a file's (free_inode).
Status write_long_target(Volume& vol, Transaction& txn, CoreInode& node, const std::string& target) {
  const uint32_t bs = vol.bs;
  const uint64_t nblocks = (target.size() + bs - 1) / bs;
  AlignedBuffer data(nblocks * bs);
  std::memset(data.data(), 0, data.size());
  std::memcpy(data.data(), target.data(), target.size());
  ExtentTree tree(vol, node, &txn);
  LUNFS_TRY(tree.clear_nodes());  // an empty root: the inode's layout becomes "extents"
  for (uint64_t lb = 0; lb < nblocks;) {
    LUNFS_ASSIGN(Allocator::Run run, vol.alloc.alloc_blocks(txn, node.ino() + 1 + lb, static_cast<uint32_t>(nblocks - lb)));
    LUNFS_TRY(vol.dev.write(run.start * bs, data.span().subspan(lb * bs, uint64_t{run.length} * bs)));
    LUNFS_TRY(tree.insert({lb, run.start, run.length, 0}));
    node.d.blocks += run.length;
    lb += run.length;
  }
  return Status::ok();
}

// The target written by write_long_target; anything else on disk is EIO.
Result<std::string> read_long_target(Volume& vol, CoreInode& node) {
  const uint32_t bs = vol.bs;
  const uint64_t size = node.d.size;
  auto damaged = [&](const std::string& why) {
    vol.log_line("lunfs: symbolic link " + std::to_string(node.ino()) + ": " + why);
    return error(EIO, "symbolic link " + std::to_string(node.ino()) + ": " + why);
  };
  if (size == 0 || size > kSymlinkMaxBytes) return damaged("target of " + std::to_string(size) + " bytes");
  const uint64_t nblocks = (size + bs - 1) / bs;
  LUNFS_ASSIGN(auto segs, ExtentTree(vol, node, nullptr).map_range(0, nblocks));
  for (const Segment& seg : segs) {
    if (seg.physical == 0 || seg.unwritten) return damaged("target block " + std::to_string(seg.logical) + " not mapped");
  }
  AlignedBuffer data(nblocks * bs);
  for (const IoTransfer& t : device_reads(segs, 0, bs, data.span())) LUNFS_TRY(vol.dev.read(t.offset, t.buf));
  std::string target(reinterpret_cast<const char*>(data.data()), size);
  if (target.find('\0') != std::string::npos) return damaged("NUL byte inside the target");
  return target;
}

}  // namespace

FileSystem::FileSystem(std::unique_ptr<Volume> vol) : vol_(std::move(vol)) {}
FileSystem::~FileSystem() {
  if (mounted_) (void)unmount();
}

Result<Superblock> FileSystem::read_superblock(BlockDevice& dev) {
  const uint64_t off = kSuperblockOffset;
  if (dev.size_bytes() < off + kMinBlockSize) return error(EMEDIUMTYPE, "device too small to hold lunfs");
  uint64_t len = std::min<uint64_t>(kMaxBlockSize, dev.size_bytes() - off);
  len -= len % dev.io_alignment();
  AlignedBuffer buf(len);
  LUNFS_TRY(dev.read(off, buf.span()));
  if (get<uint32_t>(buf.span(), 0) != kMagic) {
    return error(EMEDIUMTYPE, "not a lunfs file system (no lunfs superblock at byte 65536); run mkfs.lunfs first");
  }
  uint32_t claimed_bs = get<uint32_t>(buf.span(), 36);
  if (claimed_bs < kMinBlockSize || claimed_bs > kMaxBlockSize || claimed_bs > len) {
    return error(EUCLEAN, "bad superblock: block size " + std::to_string(claimed_bs) + "; run fsck.lunfs");
  }
  auto decoded = decode_superblock(buf.span().first(claimed_bs), off / claimed_bs);
  if (!decoded) return error(EUCLEAN, "bad superblock: " + decoded.status().message() + "; run fsck.lunfs");
  return decoded;
}

Result<std::unique_ptr<FileSystem>> FileSystem::mount(BlockDevice& dev, MetadataLog& log, LockManager& lm,
                                                      const MountOptions& options) {
  LUNFS_ASSIGN(auto sb, read_superblock(dev));
  if (auto st = check_features(sb, !options.read_only); !st) return st;
  if (dev.size_bytes() < sb.geometry.block_count * sb.geometry.block_size) {
    return error(EUCLEAN, "the device is smaller than the file system it holds");
  }
  if (options.slot >= sb.geometry.journal_count) {
    return error(EINVAL, "slot " + std::to_string(options.slot) + " does not exist (the file system has " +
                             std::to_string(sb.geometry.journal_count) + " journals)");
  }
  auto vol = std::make_unique<Volume>(dev, log, sb, lm, options.slot, options.read_only);
  vol->logger = options.logger;
  vol->max_dir_depth = std::min(options.max_dir_depth, kMaxDirDepth);
  if (auto st = vol->alloc.load(); !st && !options.read_only) return st;
  std::unique_ptr<FileSystem> fs(new FileSystem(std::move(vol)));
  fs->noatime_ = options.noatime;
  {
    // Under the root's glock like any read: a copy cached without it would never be
    // invalidated when another node changes the root.
    LUNFS_ASSIGN(auto gl, fs->vol_->glocks.lock(inode_lock(sb.root_inode), GlockMode::kShared));
    std::lock_guard lock(fs->vol_->meta_mu);
    LUNFS_ASSIGN(auto root, fs->vol_->inodes->get(sb.root_inode));
    if (!root->is_dir()) return error(EUCLEAN, "the root inode is not a directory; run fsck.lunfs");
  }
  if (!options.read_only && options.free_orphans && !fs->vol_->withdrawn) {
    if (auto freed = fs->free_unused_orphans(); !freed) return freed.status();
  }
  if (!options.read_only && options.statfs_fold_interval.count() > 0) {
    fs->fold_thread_ = std::thread([p = fs.get(), i = options.statfs_fold_interval] { p->fold_loop(i); });
  }
  return fs;
}

Result<size_t> FileSystem::free_unused_orphans() {
  if (vol_->read_only || vol_->withdrawn) return size_t{0};
  std::vector<uint64_t> candidates;
  {
    std::lock_guard lock(vol_->meta_mu);
    LUNFS_ASSIGN(candidates, vol_->alloc.unlinked_inodes());
  }
  size_t freed = 0;
  for (uint64_t ino : candidates) {
    LUNFS_TRY(retrying([&]() -> Status {
      LUNFS_ASSIGN(auto gl, vol_->glocks.lock(inode_lock(ino), GlockMode::kExclusive));
      std::lock_guard lock(vol_->meta_mu);
      LUNFS_ASSIGN(bool still_inode, vol_->alloc.is_inode(ino));
      if (!still_inode) return Status::ok();  // its last user freed it meanwhile
      LUNFS_ASSIGN(auto node, vol_->inodes->get(ino));
      if (node->d.nlink != 0 || node->refs != 0 || node->freed) return Status::ok();
      auto iopen = vol_->glocks.lock_if_free(iopen_lock(ino), GlockMode::kExclusive);
      if (!iopen) return iopen.err() == EAGAIN ? Status::ok() : iopen.status();  // in use: its user frees it
      GlockHolder iopen_ex = std::move(*iopen);
      Status st = [&]() -> Status {
        auto txn = vol_->begin();
        LUNFS_TRY(free_inode(*txn, *node));
        return txn->commit();
      }();
      release_iopen(ino, iopen_ex);
      if (st) {
        ++freed;
        vol_->log_line("lunfs: freed inode " + std::to_string(ino) + ", unlinked while open and used by no node any more");
      }
      return st;
    }));
  }
  return freed;
}

void FileSystem::fold_loop(std::chrono::milliseconds interval) {
  std::unique_lock lock(fold_mu_);
  while (!fold_cv_.wait_for(lock, interval, [&] { return fold_stopping_; })) {
    lock.unlock();
    if (auto st = fold_statfs(); !st && !vol_->withdrawn) vol_->log_line("lunfs: statfs fold: " + st.to_string());
    lock.lock();
  }
}

Status FileSystem::fold_statfs() {
  if (vol_->read_only || vol_->withdrawn) return Status::ok();
  {
    std::lock_guard lock(vol_->meta_mu);
    if (!vol_->alloc.fold_delta_needed()) return Status::ok();
  }
  LUNFS_ASSIGN(auto gl, vol_->glocks.lock(statfs_lock(), GlockMode::kExclusive));
  std::lock_guard lock(vol_->meta_mu);
  auto txn = vol_->begin();
  LUNFS_ASSIGN(bool folded, vol_->alloc.fold_delta(*txn));
  if (!folded) return Status::ok();
  return txn->commit();
}

Status FileSystem::unmount() {
  if (!mounted_) return Status::ok();
  if (fold_thread_.joinable()) {
    {
      std::lock_guard lock(fold_mu_);
      fold_stopping_ = true;
    }
    fold_cv_.notify_all();
    fold_thread_.join();
  }
  drain_io();
  Status st = vol_->read_only ? Status::ok() : sync();
  // The next mounter's statfs starts from an exact master.
  if (st) st = fold_statfs();
  // Everything home and the journal empty: the next mount replays nothing.
  if (st && !vol_->read_only) st = vol_->log.checkpoint();
  {
    // Inodes the kernel still references (their pins would keep release_all waiting); an
    // unlinked one among them stays an orphan for the next mount, fsck or recovery.
    std::lock_guard lock(vol_->meta_mu);
    vol_->inodes->release_iopen_pins();
  }
  auto rel = vol_->glocks.release_all();
  if (st) st = rel;
  mounted_ = false;
  return st;
}

uint64_t FileSystem::root() const { return vol_->sb.root_inode; }
bool FileSystem::read_only() const { return vol_->read_only; }
bool FileSystem::withdrawn() const { return vol_->withdrawn; }

void FileSystem::withdraw(const std::string& why) { vol_->withdraw(why); }
const Superblock& FileSystem::superblock() const { return vol_->sb; }

Attr FileSystem::attr_of(const CoreInode& node) const {
  Attr a;
  a.ino = node.ino();
  a.mode = node.d.mode;
  a.uid = node.d.uid;
  a.gid = node.d.gid;
  a.nlink = node.d.nlink;
  a.size = node.d.size;
  a.blocks512 = (node.d.blocks + 1) * (vol_->bs / 512);
  a.rdev = node.d.rdev;
  a.generation = node.d.generation;
  a.blksize = vol_->bs;
  a.atime = node.d.atime;
  a.mtime = node.d.mtime;
  a.ctime = node.d.ctime;
  return a;
}

Result<std::shared_ptr<CoreInode>> FileSystem::inode(uint64_t ino) {
  LUNFS_ASSIGN(auto node, vol_->inodes->get(ino));
  return node;
}

Result<std::shared_ptr<CoreInode>> FileSystem::dir_inode(uint64_t ino) {
  LUNFS_ASSIGN(auto node, inode(ino));
  if (!node->is_dir()) return error(ENOTDIR, "inode " + std::to_string(ino) + " is not a directory");
  return node;
}

Result<Attr> FileSystem::getattr(uint64_t ino) {
  LUNFS_ASSIGN(auto gl, vol_->glocks.lock(inode_lock(ino), GlockMode::kShared));
  std::lock_guard lock(vol_->meta_mu);
  LUNFS_ASSIGN(auto node, inode(ino));
  return attr_of(*node);
}

Result<uint64_t> FileSystem::lookup_ino(uint64_t dir, const std::string& name) {
  LUNFS_ASSIGN(auto gl, vol_->glocks.lock(inode_lock(dir), GlockMode::kShared));
  std::lock_guard lock(vol_->meta_mu);
  LUNFS_ASSIGN(auto d, dir_inode(dir));
  if (name == ".") return dir;
  if (name == "..") return d->d.parent;
  LUNFS_ASSIGN(auto entry, Directory(*vol_, *d, nullptr).lookup(name));
  if (!entry) return error(ENOENT, name + ": no such file or directory");
  return entry->inode;
}

Result<Attr> FileSystem::lookup(uint64_t dir, const std::string& name, Ref ref) {
  if (name.size() > kNameMaxBytes) return error(ENAMETOOLONG, "name longer than 255 bytes");
  for (;;) {
    LUNFS_ASSIGN(uint64_t target, lookup_ino(dir, name));
    // The child under its own glock, taken after the directory's is let go: a child may
    // have a lower inode number than its directory (lock order, glock.h). The reference
    // is taken with the inode's glock and meta_mu held, as freeing needs both: an inode
    // found here cannot be freed before the reference counts.
    LUNFS_ASSIGN(auto gl, vol_->glocks.lock(inode_lock(target), GlockMode::kShared));
    GlockPin iopen;
    if (ref == Ref::kHold) {
      LUNFS_ASSIGN(iopen, pin_iopen(target));
    }
    std::lock_guard lock(vol_->meta_mu);
    auto node = inode(target);
    if (!node) {
      if (iopen.held()) {
        iopen.release();
        vol_->glocks.drop_if_unused(iopen_lock(target));
      }
      // Removed between the two: the name now names another inode, or nothing.
      if (node.err() == ESTALE) continue;
      return error(node.err(), "entry '" + name + "' of directory " + std::to_string(dir) + ": " +
                                   node.status().message());
    }
    if (ref == Ref::kHold) add_reference(**node, std::move(iopen), dir, name);
    return attr_of(**node);
  }
}

Result<Attr> FileSystem::create(uint64_t dir, const std::string& name, uint32_t mode, uint64_t rdev,
                                const std::string& symlink_target, const Cred& cred, Ref ref) {
  LUNFS_TRY(check_name(name));
  LUNFS_TRY(vol_->check_writable());
  return retrying([&]() -> Result<Attr> {
    LUNFS_ASSIGN(auto gl, vol_->glocks.lock(inode_lock(dir), GlockMode::kExclusive));
    std::unique_lock lock(vol_->meta_mu);
    LUNFS_ASSIGN(auto d, dir_inode(dir));
    if (d->d.nlink == 0) return error(ENOENT, "directory was removed");
    // One Directory for the lookup and the add: the add reuses the bucket the lookup decoded.
    auto txn = vol_->begin();
    Directory directory(*vol_, *d, txn.get());
    LUNFS_ASSIGN(auto existing, directory.lookup(name));
    if (existing) return error(EEXIST, name + ": file exists");
    const uint32_t type = mode & S_IFMT;
    if (type == S_IFLNK) {
      if (symlink_target.size() > kSymlinkMaxBytes) return error(ENAMETOOLONG, "symbolic link target longer than 4095 bytes");
      if (symlink_target.empty()) return error(ENOENT, "empty symbolic link target");
      if (symlink_target.find('\0') != std::string::npos) return error(EINVAL, "NUL byte in a symbolic link target");
    }
    if (type == S_IFDIR && d->d.nlink >= 0xFFFFFFF0u) return error(EMLINK, "too many subdirectories");

    uint64_t generation = 0;
    LUNFS_ASSIGN(uint64_t ino, vol_->alloc.alloc_inode(*txn, dir, &generation));
    auto node = vol_->inodes->create(ino);
    Inode& n = node->d;
    Timespec now = now_timespec();
    n.mode = mode;
    n.uid = cred.uid;
    n.gid = cred.gid;
    // BSD group semantics for setgid directories: the new inode takes the directory's
    // group, and a new subdirectory stays setgid.
    if (d->d.mode & S_ISGID) {
      n.gid = d->d.gid;
      if (type == S_IFDIR) n.mode |= S_ISGID;
    }
    n.nlink = type == S_IFDIR ? 2 : 1;
    n.atime = n.mtime = n.ctime = n.crtime = now;
    n.generation = generation;
    if (type == S_IFDIR) {
      n.flags = kInodeInlineDir;
      n.parent = dir;
    } else if (type == S_IFLNK) {
      n.size = symlink_target.size();
      if (n.size <= symlink_inline_max(vol_->bs)) {
        n.flags = kInodeInlineData;
        n.content.assign(symlink_target.begin(), symlink_target.end());
      } else {
        LUNFS_TRY(write_long_target(*vol_, *txn, *node, symlink_target));
      }
    } else if (type == S_IFCHR || type == S_IFBLK) {
      n.rdev = rdev;
    }
    // Permissions: the directory's default ACL when it has one, else the caller's umask.
    LUNFS_ASSIGN(auto dflt, XattrStore(*vol_, *d, txn.get()).get(XattrNamespace::kPosixAclDefault, ""));
    if (dflt && type != S_IFLNK) {
      LUNFS_ASSIGN(auto dacl, parse_acl(*dflt));
      uint32_t m = n.mode;
      auto acl = acl_for_create(dacl, &m);
      n.mode = m;
      bool equivalent = false;
      acl_mode(acl, &equivalent);
      XattrStore xs(*vol_, *node, txn.get());
      if (!equivalent) LUNFS_TRY(xs.put(XattrNamespace::kPosixAclAccess, "", encode_acl(acl)));
      if (type == S_IFDIR) LUNFS_TRY(xs.put(XattrNamespace::kPosixAclDefault, "", *dflt));
    } else if (type != S_IFLNK) {
      n.mode &= ~(cred.umask & 0777);
    }
    node->dirty(*txn);
    LUNFS_TRY(directory.add(name, ino, dirent_type(mode)));
    if (type == S_IFDIR) d->d.nlink += 1;
    d->d.mtime = d->d.ctime = now;
    d->dirty(*txn);
    LUNFS_TRY(txn->commit());
    if (ref == Ref::kHold) add_reference(*node, GlockPin(), dir, name);  // the pin follows
    Attr attr = attr_of(*node);
    txn.reset();
    lock.unlock();
    // The new inode's own glock, out of order (kNewInode): nobody else can reach the inode
    // while this node holds the directory's glock exclusively. A node that still caches
    // the glock from the inode's previous life is asked for it back like any other.
    LUNFS_ASSIGN(auto new_gl, vol_->glocks.lock(inode_lock(ino), GlockMode::kExclusive, kNewInode));
    if (ref == Ref::kHold) {
      LUNFS_ASSIGN(auto iopen, pin_iopen(ino));
      std::lock_guard relock(vol_->meta_mu);
      if (!node->iopen.held()) node->iopen = std::move(iopen);
    }
    return attr;
  });
}

Result<Attr> FileSystem::mknod(uint64_t dir, const std::string& name, uint32_t mode, uint64_t rdev, const Cred& cred,
                               Ref ref) {
  uint32_t type = mode & S_IFMT;
  if (type == 0) mode |= S_IFREG;
  else if (type != S_IFREG && type != S_IFCHR && type != S_IFBLK && type != S_IFIFO && type != S_IFSOCK) {
    return error(EINVAL, "mknod of an unsupported file type");
  }
  return create(dir, name, mode, rdev, "", cred, ref);
}

Result<Attr> FileSystem::mkdir(uint64_t dir, const std::string& name, uint32_t mode, const Cred& cred, Ref ref) {
  return create(dir, name, S_IFDIR | (mode & 07777), 0, "", cred, ref);
}

Result<Attr> FileSystem::symlink(uint64_t dir, const std::string& name, const std::string& target, const Cred& cred,
                                 Ref ref) {
  return create(dir, name, S_IFLNK | 0777, 0, target, cred, ref);
}

Result<std::string> FileSystem::readlink(uint64_t ino) {
  LUNFS_ASSIGN(auto gl, vol_->glocks.lock(inode_lock(ino), GlockMode::kShared));
  std::lock_guard lock(vol_->meta_mu);
  LUNFS_ASSIGN(auto node, inode(ino));
  if (node->type() != S_IFLNK) return error(EINVAL, "not a symbolic link");
  if (node->d.flags & kInodeExtents) return read_long_target(*vol_, *node);
  if (!(node->d.flags & kInodeInlineData) || node->d.size == 0) {
    vol_->log_line("lunfs: symbolic link " + std::to_string(ino) + " has no target");
    return error(EIO, "symbolic link " + std::to_string(ino) + " has no target");
  }
  return std::string(node->d.content.begin(), node->d.content.end());
}

Result<Attr> FileSystem::link(uint64_t ino, uint64_t dir, const std::string& name, Ref ref) {
  LUNFS_TRY(check_name(name));
  LUNFS_TRY(vol_->check_writable());
  if (ino == dir) return error(EPERM, "hard links to directories are not allowed");
  return retrying([&]() -> Result<Attr> {
    LUNFS_ASSIGN(auto held, lock_inodes({dir, ino}, GlockMode::kExclusive));
    GlockPin iopen;
    if (ref == Ref::kHold) {
      LUNFS_ASSIGN(iopen, pin_iopen(ino));
    }
    std::lock_guard lock(vol_->meta_mu);
    LUNFS_ASSIGN(auto d, dir_inode(dir));
    LUNFS_ASSIGN(auto node, inode(ino));
    if (node->is_dir()) return error(EPERM, "hard links to directories are not allowed");
    if (d->d.nlink == 0) return error(ENOENT, "directory was removed");
    if (node->d.nlink == 0) return error(ENOENT, "file was removed");
    if (node->d.nlink >= 0xFFFFFFF0u) return error(EMLINK, "too many links");
    LUNFS_ASSIGN(auto existing, Directory(*vol_, *d, nullptr).lookup(name));
    if (existing) return error(EEXIST, name + ": file exists");
    auto txn = vol_->begin();
    LUNFS_TRY(Directory(*vol_, *d, txn.get()).add(name, ino, dirent_type(node->d.mode)));
    Timespec now = now_timespec();
    node->d.nlink += 1;
    node->d.ctime = now;
    node->dirty(*txn);
    d->d.mtime = d->d.ctime = now;
    d->dirty(*txn);
    LUNFS_TRY(txn->commit());
    if (ref == Ref::kHold) add_reference(*node, std::move(iopen), dir, name);
    return attr_of(*node);
  });
}

Status FileSystem::drop_link(Transaction& txn, CoreInode& node, GlockHolder* iopen_ex) {
  node.d.nlink -= 1;
  node.d.ctime = now_timespec();
  node.dirty(txn);
  if (node.d.nlink > 0) return Status::ok();
  return free_or_orphan(txn, node, iopen_ex);
}

Status FileSystem::free_or_orphan(Transaction& txn, CoreInode& node, GlockHolder* iopen_ex) {
  if (node.refs == 0) {
    // Under the inode's exclusive glock: a node that uses the inode took its iopen glock
    // before it could reach this point, and gives it back only under the inode's glock
    // (forget), so a refusal here means a user that will come to forget() after us.
    auto ex = vol_->glocks.lock_if_free(iopen_lock(node.ino()), GlockMode::kExclusive);
    if (ex) {
      *iopen_ex = std::move(*ex);
      return free_inode(txn, node);
    }
    if (ex.err() != EAGAIN) return ex.status();
  }
  // In use here or on another node: the data stays until the last user lets go.
  return vol_->alloc.mark_unlinked(txn, node.ino());
}

void FileSystem::release_iopen(uint64_t ino, GlockHolder& iopen_ex) {
  if (!iopen_ex.held()) return;
  iopen_ex.unlock();
  // Not kept cached: a node that reuses the block for a new inode must get it at once.
  vol_->glocks.drop_if_unused(iopen_lock(ino));
}

Result<GlockPin> FileSystem::pin_iopen(uint64_t ino) {
  LUNFS_ASSIGN(auto holder, vol_->glocks.lock(iopen_lock(ino), GlockMode::kShared));
  return holder.pin();
}

void FileSystem::add_reference(CoreInode& node, GlockPin iopen, uint64_t parent, const std::string& name) {
  node.refs += 1;
  if (!node.iopen.held()) node.iopen = std::move(iopen);
  if (parent != 0) {
    node.entry_parent = parent;
    node.entry_name = name;
  }
}

void FileSystem::set_iopen_wanted_hook(std::function<void(uint64_t, uint64_t, const std::string&)> hook) {
  std::lock_guard lock(vol_->meta_mu);
  vol_->iopen_wanted = std::move(hook);
}

Status FileSystem::free_inode(Transaction& txn, CoreInode& node) {
  if (node.is_dir()) {
    LUNFS_TRY(Directory(*vol_, node, &txn).release_blocks());
  } else if (node.d.flags & kInodeExtents) {
    LUNFS_TRY(truncate_blocks(txn, node, 0));
  }
  if (node.d.xattr_block) {
    LUNFS_TRY(vol_->alloc.free_blocks(txn, node.d.xattr_block, 1));
    txn.revoke(node.d.xattr_block);
    node.d.xattr_block = 0;
  }
  LUNFS_TRY(vol_->alloc.free_inode(txn, node.ino()));
  txn.revoke(node.ino());
  node.dirty(txn);
  node.freed = true;
  return Status::ok();
}

Result<std::vector<GlockHolder>> FileSystem::lock_inodes(std::vector<uint64_t> inos, GlockMode mode,
                                                         unsigned flags) {
  std::sort(inos.begin(), inos.end());
  inos.erase(std::unique(inos.begin(), inos.end()), inos.end());
  std::vector<GlockHolder> held;
  for (uint64_t ino : inos) {
    if (ino == 0) continue;
    LUNFS_ASSIGN(auto h, vol_->glocks.lock(inode_lock(ino), mode, flags));
    held.push_back(std::move(h));
  }
  return held;
}

Status FileSystem::acquire_wanted_glock() {
  {
    std::lock_guard lock(vol_->meta_mu);
    vol_->inodes->reload_all();
  }
  auto wanted = Allocator::take_wanted_glock();
  if (!wanted) return error(EIO, "internal error: an operation asked to be retried without naming a glock");
  LUNFS_ASSIGN(auto held, vol_->glocks.lock(*wanted, GlockMode::kExclusive));
  return Status::ok();
}

Result<FileSystem::Removal> FileSystem::lock_for_removal(uint64_t dir, const std::string& name) {
  LUNFS_TRY(check_name(name));
  LUNFS_TRY(vol_->check_writable());
  for (;;) {
    // Look the target up, then take both glocks in ascending order and look again: the
    // target may have a lower inode number than its directory.
    LUNFS_ASSIGN(uint64_t target, lookup_ino(dir, name));
    Removal r;
    LUNFS_ASSIGN(r.glocks, lock_inodes({dir, target}, GlockMode::kExclusive));
    // The directory's inode stays cached while its glock is held, so `r.dir` and the
    // Directory built on it outlive this function.
    r.meta = std::unique_lock(vol_->meta_mu);
    LUNFS_ASSIGN(r.dir, dir_inode(dir));
    r.directory = std::make_unique<Directory>(*vol_, *r.dir, nullptr);
    LUNFS_ASSIGN(auto entry, r.directory->lookup(name));
    if (!entry) return error(ENOENT, name + ": no such file or directory");
    if (entry->inode != target) continue;  // replaced between the two lookups
    LUNFS_ASSIGN(r.target, inode(target));
    return r;
  }
}

Status FileSystem::unlink(uint64_t dir, const std::string& name) {
  return retrying([&]() -> Status {
    LUNFS_ASSIGN(Removal r, lock_for_removal(dir, name));
    CoreInode& d = *r.dir;
    CoreInode& node = *r.target;
    if (node.is_dir()) return error(EISDIR, name + " is a directory");
    auto txn = vol_->begin();
    r.directory->attach(txn.get());
    LUNFS_TRY(r.directory->remove(name));
    d.d.mtime = d.d.ctime = now_timespec();
    d.dirty(*txn);
    GlockHolder iopen_ex;
    LUNFS_TRY(drop_link(*txn, node, &iopen_ex));
    LUNFS_TRY(txn->commit());
    release_iopen(node.ino(), iopen_ex);
    if (node.freed) vol_->inodes->forget(node.ino());
    return Status::ok();
  });
}

Status FileSystem::rmdir(uint64_t dir, const std::string& name) {
  if (name == ".") return error(EINVAL, "cannot remove '.'");
  if (name == "..") return error(ENOTEMPTY, "cannot remove '..'");
  return retrying([&]() -> Status {
    LUNFS_ASSIGN(Removal r, lock_for_removal(dir, name));
    CoreInode& d = *r.dir;
    CoreInode& node = *r.target;
    if (!node.is_dir()) return error(ENOTDIR, name + " is not a directory");
    if (node.d.dir_entries != 0) return error(ENOTEMPTY, name + ": directory not empty");
    auto txn = vol_->begin();
    r.directory->attach(txn.get());
    LUNFS_TRY(r.directory->remove(name));
    Timespec now = now_timespec();
    d.d.nlink -= 1;
    d.d.mtime = d.d.ctime = now;
    d.dirty(*txn);
    node.d.nlink = 0;
    node.d.ctime = now;
    node.dirty(*txn);
    GlockHolder iopen_ex;
    LUNFS_TRY(free_or_orphan(*txn, node, &iopen_ex));
    LUNFS_TRY(txn->commit());
    release_iopen(node.ino(), iopen_ex);
    if (node.freed) vol_->inodes->forget(node.ino());
    return Status::ok();
  });
}

Result<Attr> FileSystem::setattr(uint64_t ino, const SetAttr& c) {
  LUNFS_TRY(vol_->check_writable());
  return retrying([&]() -> Result<Attr> {
    LUNFS_ASSIGN(auto gl, vol_->glocks.lock(inode_lock(ino), GlockMode::kExclusive));
    std::lock_guard lock(vol_->meta_mu);
    LUNFS_ASSIGN(auto node, inode(ino));
    Inode& d = node->d;
    if (c.size) {
      if (node->is_dir()) return error(EISDIR, "cannot truncate a directory");
      if (!node->is_reg()) return error(EINVAL, "cannot truncate a special file");
      if (*c.size > max_file_size()) return error(EFBIG, "size beyond the largest file");
    }
    auto txn = vol_->begin();
    Timespec now = now_timespec();
    if (c.size && *c.size != d.size) {
      LUNFS_TRY(truncate_blocks(*txn, *node, *c.size));
      d.size = *c.size;
      d.mtime = now;
    } else if (c.size) {
      d.mtime = now;  // truncate to the same size still updates the times (POSIX)
    }
    if (c.mode) {
      d.mode = (d.mode & S_IFMT) | (*c.mode & 07777);
      XattrStore xs(*vol_, *node, txn.get());
      LUNFS_ASSIGN(auto access, xs.get(XattrNamespace::kPosixAclAccess, ""));
      if (access) {
        LUNFS_ASSIGN(auto acl, parse_acl(*access));
        acl_chmod(acl, d.mode);
        LUNFS_TRY(xs.put(XattrNamespace::kPosixAclAccess, "", encode_acl(acl)));
      }
    }
    if ((c.uid && *c.uid != d.uid) || (c.gid && *c.gid != d.gid)) {
      // chown of a non-directory clears setuid, and setgid when it means "setgid" (group
      // execute set) rather than mandatory locking.
      if (!node->is_dir() && !c.mode) {
        d.mode &= ~S_ISUID;
        if (d.mode & S_IXGRP) d.mode &= ~S_ISGID;
      }
    }
    if (c.uid) d.uid = *c.uid;
    if (c.gid) d.gid = *c.gid;
    if (c.atime) d.atime = *c.atime;
    if (c.mtime) d.mtime = *c.mtime;
    d.ctime = c.ctime ? *c.ctime : now;
    node->dirty(*txn);
    LUNFS_TRY(txn->commit());
    return attr_of(*node);
  });
}

Status FileSystem::readdir(uint64_t dir, uint64_t offset, const std::function<bool(const DirListing&)>& fn) {
  LUNFS_ASSIGN(auto gl, vol_->glocks.lock(inode_lock(dir), GlockMode::kShared));
  std::lock_guard lock(vol_->meta_mu);
  LUNFS_ASSIGN(auto d, dir_inode(dir));
  if (offset == 0 && !fn({".", dir, DT_DIR, 1})) return Status::ok();
  if (offset <= 1 && !fn({"..", d->d.parent, DT_DIR, 2})) return Status::ok();
  return Directory(*vol_, *d, nullptr).list(std::max<uint64_t>(offset, Directory::kFirstEntryOffset),
                                            [&](const DirEntry& e, uint64_t next) {
                                              return fn({e.name, e.inode, e.type, next});
                                            });
}

Result<FsStat> FileSystem::statfs() {
  LUNFS_ASSIGN(auto gl, vol_->glocks.lock(statfs_lock(), GlockMode::kShared));
  std::lock_guard lock(vol_->meta_mu);
  LUNFS_ASSIGN(AllocStats s, vol_->alloc.stats());
  // Negative only on a damaged master (fsck repairs it); never report nonsense to df.
  const uint64_t free_blocks = static_cast<uint64_t>(std::clamp<int64_t>(s.free_blocks, 0, s.data_blocks));
  const uint64_t inodes = static_cast<uint64_t>(std::max<int64_t>(s.inodes, 0));
  FsStat f;
  f.block_size = vol_->bs;
  f.blocks = s.data_blocks;
  f.free_blocks = free_blocks;
  f.files = inodes + free_blocks;
  f.free_files = free_blocks;
  return f;
}

Status FileSystem::write_times(CoreInode& node) {
  if (!node.times_dirty || node.freed || vol_->read_only || vol_->withdrawn) return Status::ok();
  auto txn = vol_->begin();
  node.dirty(*txn);
  return txn->commit();
}

Status FileSystem::fsync(uint64_t ino, bool datasync) {
  // fdatasync may skip timestamps, but a size change is always in a transaction already.
  // Lazy timestamps exist only while this node holds the inode's glock (giving it back
  // writes or drops them); writing them without it could put a stale inode home over
  // another node's changes.
  if (!datasync) {
    if (auto gl = vol_->glocks.hold_cached(inode_lock(ino))) {
      std::lock_guard lock(vol_->meta_mu);
      LUNFS_ASSIGN(auto node, inode(ino));
      LUNFS_TRY(write_times(*node));
    }
  }
  // Data went to the device before its transactions were submitted (ordered data); one
  // log commit (a flush) makes both durable.
  LUNFS_TRY(vol_->log.commit());
  return vol_->dev.flush();
}

Status FileSystem::sync() {
  std::vector<uint64_t> dirty;
  {
    std::lock_guard lock(vol_->meta_mu);
    for (auto& node : vol_->inodes->times_dirty()) dirty.push_back(node->ino());
  }
  for (uint64_t ino : dirty) {  // each under its glock, as fsync
    auto gl = vol_->glocks.hold_cached(inode_lock(ino));
    if (!gl) continue;
    std::lock_guard lock(vol_->meta_mu);
    auto node = inode(ino);
    if (node) LUNFS_TRY(write_times(**node));
  }
  LUNFS_TRY(vol_->log.commit());
  return vol_->dev.flush();
}

void FileSystem::touch_atime(uint64_t ino) {
  if (noatime_ || vol_->read_only) return;
  // Under the glock, or not at all: loading the inode without it would cache a copy that
  // no demote invalidates, and its lazy atime would later write that copy home over
  // another node's changes (found by the cluster checker).
  auto gl = vol_->glocks.hold_cached(inode_lock(ino));
  if (!gl) return;
  std::lock_guard lock(vol_->meta_mu);
  auto node = inode(ino);
  if (node) note_access(**node);
}

void FileSystem::note_access(CoreInode& node) {
  if (noatime_ || vol_->read_only) return;
  Inode& d = node.d;
  Timespec now = now_timespec();
  // relatime: only when atime is older than mtime/ctime, or a day old.
  auto older = [](const Timespec& a, const Timespec& b) { return a.sec < b.sec || (a.sec == b.sec && a.nsec < b.nsec); };
  if (older(d.atime, d.mtime) || older(d.atime, d.ctime) || now.sec - d.atime.sec >= 86400) {
    d.atime = now;
    node.times_dirty = true;
  }
}

std::string FileSystem::glock_dump() { return vol_->glocks.dump(); }

void FileSystem::hold(uint64_t ino) {
  auto iopen = pin_iopen(ino);
  std::lock_guard lock(vol_->meta_mu);
  auto node = inode(ino);
  if (node) add_reference(**node, iopen ? std::move(*iopen) : GlockPin());
}

Status FileSystem::forget(uint64_t ino, uint64_t count) {
  return retrying([&]() -> Status {
    LUNFS_ASSIGN(auto gl, vol_->glocks.lock(inode_lock(ino), GlockMode::kExclusive));
    std::lock_guard lock(vol_->meta_mu);
    auto it = inode(ino);
    if (!it) return it.status();
    auto node = *it;
    node->refs -= std::min(node->refs, count);
    if (node->refs > 0) return Status::ok();
    // The last use on this node. Its iopen glock goes back under the inode's exclusive
    // glock, so a node that takes that glock after us no longer sees us using the inode;
    // of the nodes letting go of an unlinked inode, one after another under that glock,
    // the last therefore gets the iopen glock exclusively and frees it (decision 11).
    node->iopen.release();
    GlockHolder iopen_ex;
    if (node->d.nlink == 0 && !vol_->read_only && !vol_->withdrawn) {
      auto ex = vol_->glocks.lock_if_free(iopen_lock(ino), GlockMode::kExclusive);
      if (ex) {
        iopen_ex = std::move(*ex);
        auto txn = vol_->begin();
        LUNFS_TRY(free_inode(*txn, *node));
        LUNFS_TRY(txn->commit());
      } else if (ex.err() != EAGAIN) {
        return ex.status();
      }  // else another node still uses it, and frees it when it lets go
    } else {
      LUNFS_TRY(write_times(*node));
    }
    iopen_ex.unlock();
    vol_->glocks.drop_if_unused(iopen_lock(ino));
    vol_->inodes->forget(ino);
    return Status::ok();
  });
}

}  // namespace lunfs

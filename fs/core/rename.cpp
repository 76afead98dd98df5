// rename(2) with RENAME_NOREPLACE and RENAME_EXCHANGE. A rename that moves a directory to
// another parent takes the file system's rename glock first (as GFS2), so that the
// directory-loop check (is the target directory inside the moved one?) cannot race with
// another such rename on any node.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "fs/core/dir.h"
#include "fs/format/dir_format.h"
#include "fs/format/inode_format.h"
#include "fs/core/filesystem.h"
#include "fs/core/volume.h"

namespace lunfs {

using namespace ondisk;

namespace {
constexpr unsigned kNoReplace = 1, kExchange = 2;
}  // namespace

Status FileSystem::is_ancestor(uint64_t maybe_ancestor, uint64_t dir, bool* result) {
  uint64_t cur = dir;
  for (size_t steps = 0; steps < (1u << 20); ++steps) {
    if (cur == maybe_ancestor) {
      *result = true;
      return Status::ok();
    }
    if (cur == vol_->sb.root_inode) break;
    // Read past the caches: this node holds no glock on most of the path. Parents change
    // only under the rename glock, which this node holds and whose previous holder wrote
    // its log home when it let go (glops.cpp), so the LUN (or this node's log) has them.
    LUNFS_ASSIGN(auto img, vol_->cache.read_uncached(cur));
    LUNFS_ASSIGN(auto node, decode_inode(img->span(), cur, vol_->sb.csum_seed, vol_->g));
    cur = node.parent;
  }
  *result = false;
  return Status::ok();
}

Status FileSystem::rename(uint64_t olddir, const std::string& oldname, uint64_t newdir, const std::string& newname,
                          unsigned flags) {
  if (flags & ~(kNoReplace | kExchange)) return error(EINVAL, "unknown rename flags");
  if ((flags & kNoReplace) && (flags & kExchange)) return error(EINVAL, "NOREPLACE with EXCHANGE");
  if (oldname.size() > kNameMaxBytes || newname.size() > kNameMaxBytes) return error(ENAMETOOLONG, "name longer than 255 bytes");
  if (!valid_entry_name(oldname) || !valid_entry_name(newname)) return error(EINVAL, "invalid name");
  LUNFS_TRY(vol_->check_writable());
  // Lock order: the rename glock, then every inode glock involved (both directories, the
  // moved inode and the one it replaces) in ascending inode number (glock.h).
  LUNFS_ASSIGN(auto grn, vol_->glocks.lock({GlockType::kRename, 0}, GlockMode::kExclusive));
  return retrying([&]() -> Status {
    for (;;) {
      LUNFS_ASSIGN(uint64_t src_ino, lookup_ino(olddir, oldname));
      auto dst_lookup = lookup_ino(newdir, newname);
      if (!dst_lookup && dst_lookup.err() != ENOENT) return dst_lookup.status();
      const uint64_t dst_ino = dst_lookup ? *dst_lookup : 0;
      LUNFS_ASSIGN(auto held, lock_inodes({olddir, newdir, src_ino, dst_ino}, GlockMode::kExclusive));
      std::unique_lock lock(vol_->meta_mu);
      LUNFS_ASSIGN(auto od, dir_inode(olddir));
      LUNFS_ASSIGN(auto nd, dir_inode(newdir));
      if (nd->d.nlink == 0) return error(ENOENT, "target directory was removed");
      LUNFS_ASSIGN(auto src_entry, Directory(*vol_, *od, nullptr).lookup(oldname));
      if (!src_entry) return error(ENOENT, oldname + ": no such file or directory");
      LUNFS_ASSIGN(auto dst_entry, Directory(*vol_, *nd, nullptr).lookup(newname));
      // Changed between the lookups and the locks: look again.
      if (src_entry->inode != src_ino || (dst_entry ? dst_entry->inode : 0) != dst_ino) continue;
      return rename_locked(olddir, oldname, newdir, newname, flags, *od, *nd, src_ino, dst_ino);
    }
  });
}

Status FileSystem::rename_locked(uint64_t olddir, const std::string& oldname, uint64_t newdir,
                                 const std::string& newname, unsigned flags, CoreInode& odn, CoreInode& ndn,
                                 uint64_t src_ino, uint64_t dst_ino) {
  CoreInode* od = &odn;
  CoreInode* nd = &ndn;
  if ((flags & kNoReplace) && dst_ino) return error(EEXIST, newname + ": file exists");
  if ((flags & kExchange) && !dst_ino) return error(ENOENT, newname + ": no such file or directory");
  LUNFS_ASSIGN(auto src, inode(src_ino));
  std::shared_ptr<CoreInode> dst;
  if (dst_ino) {
    LUNFS_ASSIGN(dst, inode(dst_ino));
  }
  if (dst && dst->ino() == src->ino()) return Status::ok();  // same file: POSIX says do nothing
  GlockHolder iopen_ex;  // free_or_orphan's, for a replaced inode freed here
  // Moving a directory under itself makes a loop.
  if (src->is_dir() && olddir != newdir) {
    bool loop = false;
    LUNFS_TRY(is_ancestor(src->ino(), newdir, &loop));
    if (loop) return error(EINVAL, "cannot move a directory into itself");
  }
  if ((flags & kExchange) && dst->is_dir() && olddir != newdir) {
    bool loop = false;
    LUNFS_TRY(is_ancestor(dst->ino(), olddir, &loop));
    if (loop) return error(EINVAL, "cannot move a directory into itself");
  }
  if (dst && !(flags & kExchange)) {
    if (src->is_dir() && !dst->is_dir()) return error(ENOTDIR, newname + " is not a directory");
    if (!src->is_dir() && dst->is_dir()) return error(EISDIR, newname + " is a directory");
    if (dst->is_dir() && dst->d.dir_entries != 0) return error(ENOTEMPTY, newname + ": directory not empty");
  }

  auto txn = vol_->begin();
  Timespec now = now_timespec();
  Directory from(*vol_, *od, txn.get()), to(*vol_, *nd, txn.get());
  if (flags & kExchange) {
    LUNFS_TRY(from.retarget(oldname, dst->ino(), dirent_type(dst->d.mode)));
    LUNFS_TRY(to.retarget(newname, src->ino(), dirent_type(src->d.mode)));
    if (olddir != newdir) {
      if (src->is_dir()) {
        src->d.parent = newdir;
        od->d.nlink -= 1;
        nd->d.nlink += 1;
      }
      if (dst->is_dir()) {
        dst->d.parent = olddir;
        nd->d.nlink -= 1;
        od->d.nlink += 1;
      }
    }
    dst->d.ctime = now;
    dst->dirty(*txn);
  } else {
    if (dst) {
      LUNFS_TRY(to.retarget(newname, src->ino(), dirent_type(src->d.mode)));
      if (dst->is_dir()) {
        nd->d.nlink -= 1;  // the replaced directory's ".."
        dst->d.nlink = 0;
        dst->d.ctime = now;
        dst->dirty(*txn);
        LUNFS_TRY(free_or_orphan(*txn, *dst, &iopen_ex));
      } else {
        LUNFS_TRY(drop_link(*txn, *dst, &iopen_ex));
      }
    } else {
      LUNFS_TRY(to.add(newname, src->ino(), dirent_type(src->d.mode)));
    }
    LUNFS_TRY(from.remove(oldname));
    if (src->is_dir() && olddir != newdir) {
      src->d.parent = newdir;
      od->d.nlink -= 1;
      nd->d.nlink += 1;
    }
  }
  src->d.ctime = now;
  src->dirty(*txn);
  od->d.mtime = od->d.ctime = now;
  nd->d.mtime = nd->d.ctime = now;
  od->dirty(*txn);
  nd->dirty(*txn);
  LUNFS_TRY(txn->commit());
  if (dst) release_iopen(dst->ino(), iopen_ex);
  if (dst && dst->freed) vol_->inodes->forget(dst->ino());
  return Status::ok();
}

}  // namespace lunfs

// FUSE request handlers; see lowlevel.h.
#include "fuse/lowlevel.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstdio>
#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "fuse/open_reply.h"

namespace lunfs {

namespace {

constexpr unsigned kMaxBackground = 128;

FuseContext& ctx(fuse_req_t req) { return *static_cast<FuseContext*>(fuse_req_userdata(req)); }
FileSystem& fs(fuse_req_t req) { return *ctx(req).fs; }

// FUSE_ROOT_ID is 1; lunfs's root has its own inode number (its block).
uint64_t to_ino(fuse_req_t req, fuse_ino_t ino) { return ino == FUSE_ROOT_ID ? fs(req).root() : ino; }
fuse_ino_t to_fuse(fuse_req_t req, uint64_t ino) { return ino == fs(req).root() ? FUSE_ROOT_ID : ino; }

void fill_stat(fuse_req_t req, const Attr& a, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = a.ino;
  st->st_mode = a.mode;
  st->st_nlink = a.nlink;
  st->st_uid = a.uid;
  st->st_gid = a.gid;
  st->st_size = static_cast<off_t>(a.size);
  st->st_blocks = static_cast<blkcnt_t>(a.blocks512);
  st->st_blksize = a.blksize;
  st->st_rdev = a.rdev;
  st->st_atim = {a.atime.sec, static_cast<long>(a.atime.nsec)};
  st->st_mtim = {a.mtime.sec, static_cast<long>(a.mtime.nsec)};
  st->st_ctim = {a.ctime.sec, static_cast<long>(a.ctime.nsec)};
  (void)req;
}

void reply_error(fuse_req_t req, const Status& st) {
  if (ctx(req).debug || st.err() == EIO) std::fprintf(stderr, "lunfs: %s\n", st.to_string().c_str());
  fuse_reply_err(req, st.err() ? st.err() : EIO);
}

// What the kernel caches for a name: the inode, its attributes and how long both stay valid.
fuse_entry_param entry_param(fuse_req_t req, const Attr& a) {
  fuse_entry_param e{};
  e.ino = to_fuse(req, a.ino);
  e.generation = a.generation;
  fill_stat(req, a, &e.attr);
  e.attr.st_ino = e.ino;
  e.attr_timeout = ctx(req).attr_timeout;
  e.entry_timeout = ctx(req).entry_timeout;
  return e;
}

constexpr auto kHold = FileSystem::Ref::kHold;

// Replies with an entry whose reference the core took with it (Ref::kHold); the kernel
// owns that reference unless the reply fails.
void reply_entry(fuse_req_t req, const Result<Attr>& a) {
  if (!a) return reply_error(req, a.status());
  fuse_entry_param e = entry_param(req, *a);
  if (fuse_reply_entry(req, &e) != 0) (void)fs(req).forget(a->ino, 1);
}

void reply_attr(fuse_req_t req, const Result<Attr>& a) {
  if (!a) return reply_error(req, a.status());
  struct stat st;
  fill_stat(req, *a, &st);
  st.st_ino = to_fuse(req, a->ino);
  fuse_reply_attr(req, &st, ctx(req).attr_timeout);
}

Cred cred_of(fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  return {c->uid, c->gid, c->umask};
}

void op_init(void*, fuse_conn_info* conn) {
  conn->want |= FUSE_CAP_ASYNC_DIO | FUSE_CAP_ASYNC_READ | FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_READDIRPLUS |
                FUSE_CAP_EXPORT_SUPPORT;
  // ACLs: the kernel enforces them; the core applies the umask itself (DONT_MASK), since
  // a directory's default ACL replaces the umask.
  if (conn->capable & FUSE_CAP_POSIX_ACL) conn->want |= FUSE_CAP_POSIX_ACL;
  if (conn->capable & FUSE_CAP_DONT_MASK) conn->want |= FUSE_CAP_DONT_MASK;
  // The kernel clears setuid/setgid on write and truncate through setattr itself.
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  // fcntl (POSIX, OFD) and flock locks are ours, cluster-wide (file_locks.h).
  conn->want |= conn->capable & (FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
  conn->max_write = 1 << 20;
  conn->max_readahead = 1 << 20;
  // Asynchronous direct I/O travels as background requests, of which the kernel keeps at
  // most max_background in flight (default 12): a VM at queue depth 32 would see 12.
  conn->max_background = kMaxBackground;
  conn->congestion_threshold = kMaxBackground * 3 / 4;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  reply_entry(req, fs(req).lookup(to_ino(req, parent), name, kHold));
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  (void)fs(req).forget(to_ino(req, ino), nlookup);
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) (void)fs(req).forget(to_ino(req, forgets[i].ino), forgets[i].nlookup);
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) { reply_attr(req, fs(req).getattr(to_ino(req, ino))); }

ondisk::Timespec ts(const struct timespec& t) { return {t.tv_sec, static_cast<uint32_t>(t.tv_nsec)}; }

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  SetAttr c;
  if (to_set & FUSE_SET_ATTR_MODE) c.mode = attr->st_mode;
  if (to_set & FUSE_SET_ATTR_UID) c.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) c.gid = attr->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) c.size = static_cast<uint64_t>(attr->st_size);
  ondisk::Timespec now = now_timespec();
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) c.atime = now;
  else if (to_set & FUSE_SET_ATTR_ATIME) c.atime = ts(attr->st_atim);
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) c.mtime = now;
  else if (to_set & FUSE_SET_ATTR_MTIME) c.mtime = ts(attr->st_mtim);
  if (to_set & FUSE_SET_ATTR_CTIME) c.ctime = ts(attr->st_ctim);
  reply_attr(req, fs(req).setattr(to_ino(req, ino), c));
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  auto r = fs(req).readlink(to_ino(req, ino));
  if (!r) return reply_error(req, r.status());
  fuse_reply_readlink(req, r->c_str());
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  reply_entry(req, fs(req).mknod(to_ino(req, parent), name, mode, rdev, cred_of(req), kHold));
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  reply_entry(req, fs(req).mkdir(to_ino(req, parent), name, mode, cred_of(req), kHold));
}

void op_symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  reply_entry(req, fs(req).symlink(to_ino(req, parent), name, target, cred_of(req), kHold));
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent, const char* name) {
  reply_entry(req, fs(req).link(to_ino(req, ino), to_ino(req, parent), name, kHold));
}

void reply_status(fuse_req_t req, const Status& st) {
  if (!st) return reply_error(req, st);
  fuse_reply_err(req, 0);
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  reply_status(req, fs(req).unlink(to_ino(req, parent), name));
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  reply_status(req, fs(req).rmdir(to_ino(req, parent), name));
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent, const char* newname,
               unsigned flags) {
  reply_status(req, fs(req).rename(to_ino(req, parent), name, to_ino(req, newparent), newname, flags));
}

// Opens an existing file: the checks, and O_TRUNC; returns the attributes after the open.
// libfuse 3 turns on FUSE_CAP_ATOMIC_O_TRUNC, so the kernel passes O_TRUNC in OPEN (and
// CREATE) and sends no setattr: the truncation is ours, with O_RDONLY|O_TRUNC too (Linux
// truncates when the caller may write, which the kernel checked). As on ext4, mtime and
// ctime change even when the file was empty already. The kernel's own truncating setattr
// would also clear setuid/setgid for a caller without CAP_FSETID; since it never comes,
// they are cleared here for callers other than root (the server cannot see capabilities).
Result<Attr> open_existing(fuse_req_t req, const Attr& a, int flags) {
  if (S_ISDIR(a.mode)) return error(EISDIR, "is a directory");
  if ((flags & O_ACCMODE) != O_RDONLY && fs(req).read_only()) return error(EROFS, "read-only file system");
  if (!(flags & O_TRUNC)) return a;
  SetAttr c;
  c.size = 0;
  const bool kill_sgid = (a.mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP);
  if (fuse_req_ctx(req)->uid != 0 && ((a.mode & S_ISUID) || kill_sgid)) {
    c.mode = a.mode & 07777 & ~S_ISUID & ~(kill_sgid ? S_ISGID : 0);
  }
  return fs(req).setattr(a.ino, c);
}

void set_open_flags(fuse_req_t req, fuse_file_info* fi) {
  if ((fi->flags & O_DIRECT) || ctx(req).cluster) {
    // QEMU cache=none, and every open of a cluster mount: no page cache, requests go
    // straight to the core.
    fi->direct_io = 1;
  } else {
    fi->keep_cache = 1;  // this node holds the inode glock: cached pages stay valid
  }
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto a = fs(req).getattr(to_ino(req, ino));
  if (!a) return reply_error(req, a.status());
  if (auto opened = open_existing(req, *a, fi->flags); !opened) return reply_error(req, opened.status());
  set_open_flags(req, fi);
  fi->fh = ctx(req).next_fh++;
  reply_open(req, *fi);  // direct opens: parallel direct writes (fuse/open_reply.h)
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  auto a = fs(req).mknod(to_ino(req, parent), name, S_IFREG | (mode & 07777), 0, cred_of(req), kHold);
  if (!a && a.err() == EEXIST && !(fi->flags & O_EXCL)) {
    // The kernel found no entry, but the name exists by now (made by another node, or
    // after the kernel's lookup): O_CREAT without O_EXCL opens the existing file. The
    // kernel takes only a regular file from CREATE: a directory is EISDIR (open_existing),
    // anything else stays EEXIST.
    auto found = fs(req).lookup(to_ino(req, parent), name, kHold);
    if (!found) return reply_error(req, found.status());
    if (S_ISREG(found->mode) || S_ISDIR(found->mode)) a = open_existing(req, *found, fi->flags);
    if (!a) (void)fs(req).forget(found->ino, 1);
  }
  if (!a) return reply_error(req, a.status());
  fuse_entry_param e = entry_param(req, *a);
  set_open_flags(req, fi);
  fi->fh = ctx(req).next_fh++;
  if (fuse_reply_create(req, &e, fi) != 0) (void)fs(req).forget(a->ino, 1);
}

// Reads and writes complete on the core's I/O completion thread when they can go to the
// LUN asynchronously (fs/core/direct_io.cpp), so this thread returns to the next request: a VM
// at queue depth 32 keeps 32 transfers in flight with a handful of session threads.
// The descriptor's O_DIRECT picks the glock mode: direct I/O shares the deferred mode with
// other nodes' direct I/O to the same image (decision 6).
bool is_direct(const fuse_file_info* fi) { return fi && (fi->flags & O_DIRECT); }

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  fs(req).read_async(
      to_ino(req, ino), static_cast<uint64_t>(off), size,
      [req](Result<std::span<const std::byte>> data) {
        if (!data) return reply_error(req, data.status());
        fuse_reply_buf(req, reinterpret_cast<const char*>(data->data()), data->size());
      },
      is_direct(fi));
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off, fuse_file_info* fi) {
  // The core copies the data before op_write returns (libfuse reuses its buffer).
  fs(req).write_async(
      to_ino(req, ino), static_cast<uint64_t>(off), std::span(reinterpret_cast<const std::byte*>(data), size),
      [req](Result<size_t> n) {
        if (!n) return reply_error(req, n.status());
        fuse_reply_write(req, *n);
      },
      is_direct(fi));
}


void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info*) {
  reply_status(req, fs(req).fsync(to_ino(req, ino), datasync != 0));
}

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto a = fs(req).getattr(to_ino(req, ino));
  if (!a) return reply_error(req, a.status());
  if (!S_ISDIR(a->mode)) return (void)fuse_reply_err(req, ENOTDIR);
  if (!ctx(req).cluster) {  // another node may change the directory: list it afresh
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
  }
  fuse_reply_open(req, fi);
}

void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  // Collect the names first and look them up afterwards: a lookup from inside the listing
  // would take glocks while the core's metadata mutex is held, which is against the lock
  // order (glocks first) and deadlocks with a concurrent setattr.
  const uint64_t dir = to_ino(req, ino);
  std::vector<DirListing> listing;
  const size_t max_entries = size / 32 + 1;  // no direntry is smaller than 32 bytes
  auto st = fs(req).readdir(dir, static_cast<uint64_t>(off), [&](const DirListing& l) {
    listing.push_back(l);
    return listing.size() < max_entries;
  });
  // EIO after entries: a damaged directory block was skipped (fs/core/dir.h). The entries
  // go out now; the call that resumes after them has none and reports the EIO.
  if (!st && (st.err() != EIO || listing.empty())) return reply_error(req, st);
  std::vector<char> buf(size);
  size_t used = 0;
  std::vector<uint64_t> held;
  for (const DirListing& l : listing) {
    size_t n;
    if (plus) {
      // The kernel counts a readdirplus entry as a lookup, so each name is looked up again
      // with its reference (Ref::kHold); a name removed since the listing is left out. A
      // name whose inode cannot be read (damaged: EIO) is listed all the same, as ext4 and
      // XFS list it: an entry with nodeid 0 is one the kernel shows but does not
      // instantiate (fuse_direntplus_link), so stat and open of it get the lookup's EIO.
      fuse_entry_param e{};
      Result<Attr> a = error(ENOENT, "no attributes for . and ..");
      if (l.name != "." && l.name != "..") {
        a = fs(req).lookup(dir, l.name, kHold);
        if (!a && a.err() == ENOENT) continue;
        if (!a) std::fprintf(stderr, "lunfs: listed without attributes: %s\n", a.status().to_string().c_str());
      }
      if (a) {
        e = entry_param(req, *a);
      } else {
        e.attr.st_ino = to_fuse(req, l.ino);
        e.attr.st_mode = static_cast<mode_t>(l.type) << 12;
      }
      n = fuse_add_direntry_plus(req, buf.data() + used, size - used, l.name.c_str(), &e,
                                 static_cast<off_t>(l.next_offset));
      if (n > size - used) {
        if (a) (void)fs(req).forget(a->ino, 1);
        break;
      }
      if (a) held.push_back(a->ino);
    } else {
      struct stat s {};
      s.st_ino = to_fuse(req, l.ino);
      s.st_mode = static_cast<mode_t>(l.type) << 12;
      n = fuse_add_direntry(req, buf.data() + used, size - used, l.name.c_str(), &s,
                            static_cast<off_t>(l.next_offset));
      if (n > size - used) break;
    }
    used += n;
  }
  if (fuse_reply_buf(req, buf.data(), used) != 0) {
    for (uint64_t i : held) (void)fs(req).forget(i, 1);
  }
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  do_readdir(req, ino, size, off, false);
}
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  do_readdir(req, ino, size, off, true);
}
void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info*) {
  reply_status(req, fs(req).fsync(to_ino(req, ino), datasync != 0));
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  auto s = fs(req).statfs();
  if (!s) return reply_error(req, s.status());
  struct statvfs v {};
  v.f_bsize = s->block_size;
  v.f_frsize = s->block_size;
  v.f_blocks = s->blocks;
  v.f_bfree = s->free_blocks;
  v.f_bavail = s->free_blocks;
  v.f_files = s->files;
  v.f_ffree = s->free_files;
  v.f_favail = s->free_files;
  v.f_namemax = s->name_max;
  fuse_reply_statfs(req, &v);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  reply_status(req, fs(req).setxattr(to_ino(req, ino), name, std::string(value, size), flags));
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  auto v = fs(req).getxattr(to_ino(req, ino), name);
  if (!v) return reply_error(req, v.status());
  if (size == 0) return (void)fuse_reply_xattr(req, v->size());
  if (size < v->size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, v->data(), v->size());
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  auto names = fs(req).listxattr(to_ino(req, ino));
  if (!names) return reply_error(req, names.status());
  std::string all;
  for (const auto& n : *names) {
    all += n;
    all.push_back('\0');
  }
  if (size == 0) return (void)fuse_reply_xattr(req, all.size());
  if (size < all.size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, all.data(), all.size());
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  reply_status(req, fs(req).removexattr(to_ino(req, ino), name));
}

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, fuse_file_info*) {
  reply_status(req, fs(req).fallocate(to_ino(req, ino), mode, static_cast<uint64_t>(offset), static_cast<uint64_t>(length)));
}

void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info*) {
  auto r = fs(req).lseek(to_ino(req, ino), static_cast<uint64_t>(off), whence);
  if (!r) return reply_error(req, r.status());
  fuse_reply_lseek(req, static_cast<off_t>(*r));
}

void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, fuse_file_info*, fuse_ino_t ino_out,
                        off_t off_out, fuse_file_info*, size_t len, int flags) {
  if (flags != 0) return (void)fuse_reply_err(req, EINVAL);
  auto n = fs(req).copy_range(to_ino(req, ino_in), static_cast<uint64_t>(off_in), to_ino(req, ino_out),
                              static_cast<uint64_t>(off_out), len);
  if (!n) return reply_error(req, n.status());
  fuse_reply_write(req, *n);
}

// ---- fcntl and flock locks (fuse/file_locks.h; docs/cluster.md, "File locks") ----

// libfuse hands ranges over as struct flock with l_whence SEEK_SET and l_len 0 for "to
// the end" (the kernel's OFFSET_MAX); the table's ranges are inclusive.
dlm::PlockOp range_op(const struct flock* l) {
  dlm::PlockOp op;
  op.start = static_cast<uint64_t>(l->l_start);
  op.end = l->l_len == 0 ? dlm::kPlockEof : op.start + static_cast<uint64_t>(l->l_len) - 1;
  op.type = l->l_type == F_UNLCK ? dlm::PlockType::kUnlock
            : l->l_type == F_WRLCK ? dlm::PlockType::kWrite
                                   : dlm::PlockType::kRead;
  return op;
}

void interrupt_lock_wait(fuse_req_t req, void* data) { static_cast<FileLocks*>(data)->interrupt(req); }

// Submits a lock request and answers `req` with its outcome. A request that may wait can
// be interrupted (a signal to the waiting process): FUSE_INTERRUPT cancels it and the
// answer is then EINTR, unless the grant came first.
void submit_lock(fuse_req_t req, dlm::PlockOp op) {
  FileLocks& locks = *ctx(req).locks;
  const void* key = nullptr;
  if (op.wait) {
    fuse_req_interrupt_func(req, interrupt_lock_wait, &locks);
    key = req;
  }
  locks.submit(op, [req](const dlm::PlockResult& r) { fuse_reply_err(req, r.err); }, key);
}

void op_getlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock) {
  dlm::PlockOp op = range_op(lock);
  op.cmd = dlm::PlockCmd::kGet;
  op.ino = to_ino(req, ino);
  op.owner = fi->lock_owner;
  FileLocks& locks = *ctx(req).locks;
  const dlm::NodeId self = locks.self();
  locks.submit(op, [req, self, asked = *lock](const dlm::PlockResult& r) {
    if (r.err) return (void)fuse_reply_err(req, r.err);
    struct flock out = asked;
    if (r.conflict) {
      out.l_type = r.conflict->type == dlm::PlockType::kWrite ? F_WRLCK : F_RDLCK;
      out.l_whence = SEEK_SET;
      out.l_start = static_cast<off_t>(r.conflict->start);
      out.l_len = r.conflict->end == dlm::kPlockEof ? 0 : static_cast<off_t>(r.conflict->end - r.conflict->start + 1);
      // A holder on another node has no pid here: the kernel would map any number to a
      // local process (or to 0). `lunfs locks` names its node and pid.
      out.l_pid = r.conflict->owner.node == self ? static_cast<pid_t>(r.conflict->pid) : 0;
    } else {
      out.l_type = F_UNLCK;
    }
    fuse_reply_lock(req, &out);
  });
}

void op_setlk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock, int sleep) {
  dlm::PlockOp op = range_op(lock);
  op.cmd = dlm::PlockCmd::kLock;
  op.ino = to_ino(req, ino);
  op.owner = fi->lock_owner;
  op.pid = static_cast<uint32_t>(lock->l_pid);
  op.wait = sleep != 0 && op.type != dlm::PlockType::kUnlock;
  if (op.type != dlm::PlockType::kUnlock) ctx(req).locks->taken_through(fi->fh, dlm::PlockClass::kPosix, op.owner);
  submit_lock(req, op);
}

void op_flock(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, int how) {
  dlm::PlockOp op;
  op.cls = dlm::PlockClass::kFlock;
  op.ino = to_ino(req, ino);
  op.owner = fi->lock_owner;
  op.pid = static_cast<uint32_t>(fuse_req_ctx(req)->pid);
  switch (how & ~LOCK_NB) {
    case LOCK_SH: op.type = dlm::PlockType::kRead; break;
    case LOCK_EX: op.type = dlm::PlockType::kWrite; break;
    case LOCK_UN: op.type = dlm::PlockType::kUnlock; break;
    default: return (void)fuse_reply_err(req, EINVAL);
  }
  op.wait = !(how & LOCK_NB) && op.type != dlm::PlockType::kUnlock;
  if (op.type != dlm::PlockType::kUnlock) ctx(req).locks->taken_through(fi->fh, dlm::PlockClass::kFlock, op.owner);
  submit_lock(req, op);
}

// Every close of a descriptor: POSIX says the process's locks on the file go with it.
// Costs a round trip per close that lunfs did without before locks (a missing flush
// handler stops the kernel sending FLUSH at all); it sends a message only when the owner
// has locks on the file.
void op_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  const uint64_t inode = to_ino(req, ino);
  FileLocks& locks = *ctx(req).locks;
  if (!locks.flushed(fi->fh, inode, fi->lock_owner)) return (void)fuse_reply_err(req, 0);
  locks.submit({.cmd = dlm::PlockCmd::kRelease, .cls = dlm::PlockClass::kPosix, .ino = inode, .owner = fi->lock_owner},
               [req](const dlm::PlockResult&) { fuse_reply_err(req, 0); });
}

// The last reference to an open file description is gone: its OFD and flock locks go.
// Answered once every release is applied, so that a process that reopens and locks at
// once (QEMU's migration destination) finds them gone.
void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  const uint64_t inode = to_ino(req, ino);
  FileLocks& locks = *ctx(req).locks;
  auto owners = locks.released(fi->fh, inode, fi->flock_release ? std::optional<uint64_t>(fi->lock_owner) : std::nullopt);
  if (owners.empty()) return (void)fuse_reply_err(req, 0);
  auto left = std::make_shared<std::atomic<size_t>>(owners.size());
  for (auto [cls, owner] : owners)
    locks.submit({.cmd = dlm::PlockCmd::kRelease, .cls = cls, .ino = inode, .owner = owner},
                 [req, left](const dlm::PlockResult&) {
                   if (--*left == 0) fuse_reply_err(req, 0);
                 });
}

fuse_lowlevel_ops make_ops() {
  fuse_lowlevel_ops o{};
  o.init = op_init;
  o.lookup = op_lookup;
  o.forget = op_forget;
  o.forget_multi = op_forget_multi;
  o.getattr = op_getattr;
  o.setattr = op_setattr;
  o.readlink = op_readlink;
  o.mknod = op_mknod;
  o.mkdir = op_mkdir;
  o.symlink = op_symlink;
  o.link = op_link;
  o.unlink = op_unlink;
  o.rmdir = op_rmdir;
  o.rename = op_rename;
  o.open = op_open;
  o.create = op_create;
  o.read = op_read;
  o.write = op_write;
  // Flush and release only for the locks (op_flush): lunfs keeps nothing else per open
  // file. No releasedir: libfuse answers it itself.
  o.flush = op_flush;
  o.release = op_release;
  o.getlk = op_getlk;
  o.setlk = op_setlk;
  o.flock = op_flock;
  o.fsync = op_fsync;
  o.opendir = op_opendir;
  o.readdir = op_readdir;
  o.readdirplus = op_readdirplus;
  o.fsyncdir = op_fsyncdir;
  o.statfs = op_statfs;
  o.setxattr = op_setxattr;
  o.getxattr = op_getxattr;
  o.listxattr = op_listxattr;
  o.removexattr = op_removexattr;
  o.fallocate = op_fallocate;
  o.lseek = op_lseek;
  o.copy_file_range = op_copy_file_range;
  return o;
}

}  // namespace

const fuse_lowlevel_ops& lunfs_fuse_ops() {
  static const fuse_lowlevel_ops ops = make_ops();
  return ops;
}

}  // namespace lunfs

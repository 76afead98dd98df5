// The reply to FUSE_OPEN, built here instead of by fuse_reply_open(), so that it can carry
// FOPEN_PARALLEL_DIRECT_WRITES (Linux >= 6.2): without it the kernel takes the inode lock
// exclusively for every direct write and a VM image sees one write in flight at a time,
// whatever the queue depth. libfuse 3.14's fuse_file_info has no bit for it (3.17 adds
// one). fuse_reply_open() is nothing but "zero a struct fuse_open_out, fill fh and the
// FOPEN_* bits from the fuse_file_info, send it as the reply" (lib/fuse_lowlevel.c); it
// keeps no per-session record of open files, so sending the same struct ourselves with
// fuse_reply_buf() is equivalent. The kernel honours the flag only together with
// FOPEN_DIRECT_IO, and still serialises writes that extend the file or that meet a
// page-cache open of the same inode.
#pragma once

#include <linux/fuse.h>

#include <cstdint>

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

namespace lunfs {

inline int reply_open(fuse_req_t req, const fuse_file_info& fi) {
  fuse_open_out out{};
  out.fh = fi.fh;
  if (fi.direct_io) out.open_flags |= FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES;
  if (fi.keep_cache) out.open_flags |= FOPEN_KEEP_CACHE;
  if (fi.cache_readdir) out.open_flags |= FOPEN_CACHE_DIR;
  if (fi.nonseekable) out.open_flags |= FOPEN_NONSEEKABLE;
  if (fi.noflush) out.open_flags |= FOPEN_NOFLUSH;
  return fuse_reply_buf(req, reinterpret_cast<const char*>(&out), sizeof out);
}

}  // namespace lunfs

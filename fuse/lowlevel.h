// The FUSE low-level operation table of mount.lunfs: maps each kernel request onto one
// FileSystem call. Kernel caches on a single-host mount: entries and attributes are cached
// for a while, buffered opens keep the page cache, O_DIRECT opens go straight to the core.
// A cluster mount caches less (FuseContext::cluster).
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <atomic>

#include "fs/core/filesystem.h"
#include "fuse/file_locks.h"

namespace lunfs {

struct FuseContext {
  FileSystem* fs = nullptr;
  double entry_timeout = 60.0;
  double attr_timeout = 60.0;
  // A cluster mount (lockproto=corosync): other nodes change the file system, and the
  // kernel's caches are invalidated on demote only where that cannot deadlock
  // (kernel_invalidator.h). So: no page cache (every open is direct_io), no cached
  // directory listings, and entry_timeout 0; attributes stay cached for attr_timeout and
  // are dropped when the inode's glock goes.
  bool cluster = false;
  bool debug = false;
  // fcntl and flock locks (file_locks.h); open handles are numbered so that a lock can be
  // tied to the handle it was taken through.
  FileLocks* locks = nullptr;
  std::atomic<uint64_t> next_fh{1};
};

const fuse_lowlevel_ops& lunfs_fuse_ops();

}  // namespace lunfs

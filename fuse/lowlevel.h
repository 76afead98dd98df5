// The FUSE low-level operation table of mount.lunfs: maps each kernel request onto one
// FileSystem call. Kernel caches: entries and attributes are cached for a while (the node
// holds the covering glocks; with a cluster lock manager, a demote will invalidate them
// through fuse_lowlevel_notify_inval_* from a dedicated thread, see FUSE-NOTES), buffered
// opens keep the page cache, O_DIRECT opens go straight to the core.
#pragma once

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "fs/core/filesystem.h"

namespace lunfs {

struct FuseContext {
  FileSystem* fs = nullptr;
  double entry_timeout = 60.0;
  double attr_timeout = 60.0;
  bool debug = false;
};

const fuse_lowlevel_ops& lunfs_fuse_ops();

}  // namespace lunfs

// The glock operation tables for lunfs's lock types; see glops.h. Inode locks write the
// inode's lazy times and the log home, and drop the inode and every block it owns from
// the caches; rgrp locks write the log home and make the allocator re-read the group
// (header, bitmaps) the next time it holds the lock. docs/core.md, "Invalidation".
#include "fs/core/glops.h"

#include "fs/core/inode.h"
#include "fs/core/volume.h"

namespace lunfs {

namespace {

Status sync_log(void* owner, const GlockName&) {
  return static_cast<Volume*>(owner)->log.checkpoint();
}

// The log holds every transaction of this node, whichever glocks it covered; writing all
// of it home is simpler than sorting out one lock's blocks, and a demote with nothing
// committed since the last checkpoint costs no I/O (Journal::checkpoint).
Status sync_inode(void* owner, const GlockName& gl) {
  auto* vol = static_cast<Volume*>(owner);
  {
    std::lock_guard lock(vol->meta_mu);
    LUNFS_TRY(vol->inodes->sync_times(gl.number));
  }
  return vol->log.checkpoint();
}

// Everything the inode glock covers: the inode block, the blocks the inode owns (extent
// nodes, directory hash and leaf blocks, the xattr block; their decoded memos are keyed by
// image identity, so they cannot match a re-read image), and the decoded inode.
void inval_inode(void* owner, const GlockName& gl) {
  auto* vol = static_cast<Volume*>(owner);
  std::lock_guard lock(vol->meta_mu);
  vol->cache.drop(gl.number);
  vol->cache.drop_owned(gl.number);
  vol->inodes->invalidate(gl.number);
}

void inval_rgrp(void* owner, const GlockName& gl) {
  auto* vol = static_cast<Volume*>(owner);
  std::lock_guard lock(vol->meta_mu);
  vol->alloc.invalidate(static_cast<uint32_t>(gl.number));
}

const GlockOps kInodeOps{"inode", sync_inode, inval_inode};
const GlockOps kRgrpOps{"rgrp", sync_log, inval_rgrp};
// Parent pointers change only under the rename glock, and its next holder reads them
// from the LUN (rename.cpp, is_ancestor): they must be home when it moves.
const GlockOps kRenameOps{"rename", sync_log, nullptr};
// An iopen glock covers no data: it only says which nodes use the inode (decision 11).
// The inode's blocks are synced and invalidated by its inode glock.
const GlockOps kIopenOps{"iopen", nullptr, nullptr};

}  // namespace

const GlockOps* glops_for(GlockType type) {
  switch (type) {
    case GlockType::kInode: return &kInodeOps;
    case GlockType::kRgrp: return &kRgrpOps;
    case GlockType::kRename: return &kRenameOps;
    case GlockType::kIopen: return &kIopenOps;
  }
  return nullptr;
}

}  // namespace lunfs

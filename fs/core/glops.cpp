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
// Another node found the inode without links and could not free it because this node
// uses it: if the use is only the kernel's cached name, the kernel may drop that name (the
// frontend's hook), and then forgets the inode, and this node frees it (forget()).
void wanted_iopen(void* owner, const GlockName& gl) {
  auto* vol = static_cast<Volume*>(owner);
  std::function<void(uint64_t, uint64_t, const std::string&)> hook;
  uint64_t parent = 0;
  std::string name;
  {
    std::lock_guard lock(vol->meta_mu);
    if (!vol->iopen_wanted || !vol->inodes->last_entry(gl.number, &parent, &name)) return;
    hook = vol->iopen_wanted;
  }
  hook(gl.number, parent, name);
}
const GlockOps kIopenOps{"iopen", nullptr, nullptr, wanted_iopen};

// The master statfs block: home before another node reads it, re-read after.
void inval_statfs(void* owner, const GlockName&) {
  auto* vol = static_cast<Volume*>(owner);
  std::lock_guard lock(vol->meta_mu);
  vol->cache.drop(vol->sb.geometry.statfs_block);
}
const GlockOps kStatfsOps{"statfs", sync_log, inval_statfs};

}  // namespace

const GlockOps* glops_for(GlockType type) {
  switch (type) {
    case GlockType::kInode: return &kInodeOps;
    case GlockType::kRgrp: return &kRgrpOps;
    case GlockType::kRename: return &kRenameOps;
    case GlockType::kIopen: return &kIopenOps;
    case GlockType::kStatfs: return &kStatfsOps;
  }
  return nullptr;
}

}  // namespace lunfs

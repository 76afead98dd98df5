// The glock operation tables for lunfs's lock types; see glops.h. Inode locks sync the
// log and the inode's times and drop the inode from the cache; rgrp locks sync the log
// and drop the group's header and bitmaps so the next use reads the new holder's copy.
#include "fs/core/glops.h"

#include "fs/core/inode.h"
#include "fs/core/volume.h"

namespace lunfs {

namespace {

Status sync_log(void* owner, const GlockName&) {
  return static_cast<Volume*>(owner)->log.checkpoint();
}

void inval_inode(void* owner, const GlockName& gl) {
  auto* vol = static_cast<Volume*>(owner);
  std::lock_guard lock(vol->meta_mu);
  vol->cache.drop(gl.number);
  vol->inodes->forget(gl.number);
}

void inval_rgrp(void* owner, const GlockName& gl) {
  auto* vol = static_cast<Volume*>(owner);
  std::lock_guard lock(vol->meta_mu);
  ondisk::RgrpLocation loc = vol->g.rgrp(static_cast<uint32_t>(gl.number));
  for (uint64_t b = loc.header; b <= loc.header + loc.bitmap_blocks; ++b) vol->cache.drop(b);
}

const GlockOps kInodeOps{"inode", sync_log, inval_inode};
const GlockOps kRgrpOps{"rgrp", sync_log, inval_rgrp};
const GlockOps kRenameOps{"rename", nullptr, nullptr};

}  // namespace

const GlockOps* glops_for(GlockType type) {
  switch (type) {
    case GlockType::kInode: return &kInodeOps;
    case GlockType::kRgrp: return &kRgrpOps;
    case GlockType::kRename: return &kRenameOps;
  }
  return nullptr;
}

}  // namespace lunfs

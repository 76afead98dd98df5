// Truncate, fallocate (preallocation as unwritten extents, punch hole, zero range) and
// SEEK_DATA/SEEK_HOLE. Invariant kept here: bytes past the end of the file inside its last
// block are zero on disk, so growing a file never exposes old data.
#include <algorithm>
#include <cstring>

#include "fs/device/aligned_buffer.h"
#include "fs/core/bmap.h"
#include "fs/core/filesystem.h"
#include "fs/core/volume.h"

namespace lunfs {

using namespace ondisk;

Status FileSystem::zero_range_on_disk(CoreInode& node, uint64_t offset, uint64_t length) {
  // Only inside one block: callers free whole blocks and zero the partial edges.
  const uint64_t bs = vol_->bs;
  if (length == 0) return Status::ok();
  ExtentTree tree(*vol_, node, nullptr);
  uint64_t lb = offset / bs;
  LUNFS_ASSIGN(auto e, tree.find(lb));
  if (!e || e->logical > lb || (e->flags & kExtentUnwritten)) return Status::ok();  // reads as zeros
  uint64_t phys = e->physical + (lb - e->logical);
  AlignedBuffer block(bs);
  LUNFS_TRY(vol_->dev.read(phys * bs, block.span()));
  std::memset(block.data() + offset % bs, 0, length);
  return vol_->dev.write(phys * bs, block.span());
}

Status FileSystem::truncate_blocks(Transaction& txn, CoreInode& node, uint64_t new_size) {
  Inode& d = node.d;
  const uint64_t bs = vol_->bs;
  if (d.flags & kInodeInlineData) {
    if (new_size <= inode_content_capacity(vol_->bs)) {
      d.content.resize(new_size, 0);
      node.dirty(txn);
      return Status::ok();
    }
    LUNFS_TRY(unpack_inline(txn, node));
  }
  if (!(d.flags & kInodeExtents)) {
    // An empty file without a layout: growing it needs one (an empty extent tree, all hole).
    if (new_size > 0) LUNFS_TRY(ExtentTree(*vol_, node, &txn).clear_nodes());
    return Status::ok();
  }
  if (new_size < d.size && new_size % bs) {
    LUNFS_TRY(zero_range_on_disk(node, new_size, bs - new_size % bs));
  }
  const uint64_t keep = (new_size + bs - 1) / bs;
  ExtentTree tree(*vol_, node, &txn);
  std::vector<Extent> freed;
  LUNFS_TRY(tree.remove(keep, UINT64_MAX - keep, &freed));
  for (const Extent& e : freed) {
    LUNFS_TRY(vol_->alloc.free_blocks(txn, e.physical, e.length));
    d.blocks -= e.length;
  }
  if (keep == 0) LUNFS_TRY(tree.clear_nodes());
  node.dirty(txn);
  return Status::ok();
}

Status FileSystem::fallocate(uint64_t ino, int mode, uint64_t offset, uint64_t length) {
  if (mode & ~(kFallocKeepSize | kFallocPunchHole | kFallocZeroRange)) return error(EOPNOTSUPP, "fallocate mode not supported");
  if ((mode & kFallocPunchHole) && !(mode & kFallocKeepSize)) return error(EOPNOTSUPP, "punch hole needs KEEP_SIZE");
  if ((mode & kFallocPunchHole) && (mode & kFallocZeroRange)) return error(EOPNOTSUPP, "punch and zero together");
  if (length == 0) return error(EINVAL, "fallocate of length 0");
  if (offset > max_file_size() || length > max_file_size() - offset) return error(EFBIG, "beyond the largest file");
  LUNFS_TRY(vol_->check_writable());
  return retrying([&]() -> Status {
    LUNFS_ASSIGN(auto gl, vol_->glocks.lock({GlockType::kInode, ino}, GlockMode::kExclusive));
    std::lock_guard lock(vol_->meta_mu);
    LUNFS_ASSIGN(auto node, inode(ino));
    if (node->is_dir()) return error(EISDIR, "is a directory");
    if (!node->is_reg()) return error(ENODEV, "not a regular file");
    Inode& d = node->d;
    const uint64_t bs = vol_->bs;
    const uint64_t end = offset + length;
    auto txn = vol_->begin();
    if (d.flags & kInodeInlineData) {
      LUNFS_TRY(unpack_inline(*txn, *node));
    } else if (!(d.flags & kInodeExtents)) {
      LUNFS_TRY(ExtentTree(*vol_, *node, txn.get()).clear_nodes());
    }
    ExtentTree tree(*vol_, *node, txn.get());
    if (mode & (kFallocPunchHole | kFallocZeroRange)) {
      // Whole blocks go; partial edge blocks are zeroed in place.
      uint64_t zend = (mode & kFallocPunchHole) ? std::min(end, d.size) : end;
      if (offset < zend) {
        uint64_t first_full = (offset + bs - 1) / bs, end_full = zend / bs;
        if (first_full > end_full) {  // inside one block
          LUNFS_TRY(zero_range_on_disk(*node, offset, zend - offset));
        } else {
          if (offset % bs) LUNFS_TRY(zero_range_on_disk(*node, offset, bs - offset % bs));
          if (zend % bs && end_full * bs >= offset) LUNFS_TRY(zero_range_on_disk(*node, end_full * bs, zend % bs));
          if (end_full > first_full) {
            std::vector<Extent> freed;
            LUNFS_TRY(tree.remove(first_full, end_full - first_full, &freed));
            for (const Extent& e : freed) {
              LUNFS_TRY(vol_->alloc.free_blocks(*txn, e.physical, e.length));
              d.blocks -= e.length;
            }
            if (mode & kFallocZeroRange) {
              LUNFS_TRY(allocate_range(*txn, *node, first_full, end_full - first_full, true));
            }
          }
        }
      }
    } else {
      const uint64_t first = offset / bs, last = (end - 1) / bs;
      LUNFS_TRY(allocate_range(*txn, *node, first, last - first + 1, true));
    }
    if (!(mode & kFallocKeepSize) && end > d.size) d.size = end;
    if (mode & (kFallocPunchHole | kFallocZeroRange)) d.mtime = d.ctime = now_timespec();
    node->dirty(*txn);
    return txn->commit();
  });
}

Result<std::vector<Extent>> FileSystem::extents(uint64_t ino) {
  LUNFS_ASSIGN(auto gl, vol_->glocks.lock({GlockType::kInode, ino}, GlockMode::kShared));
  std::lock_guard lock(vol_->meta_mu);
  LUNFS_ASSIGN(auto node, inode(ino));
  if (!(node->d.flags & kInodeExtents)) return std::vector<Extent>{};
  return ExtentTree(*vol_, *node, nullptr).all();
}

Result<uint64_t> FileSystem::lseek(uint64_t ino, uint64_t offset, int whence) {
  constexpr int kSeekData = 3, kSeekHole = 4;
  if (whence != kSeekData && whence != kSeekHole) return error(EINVAL, "lseek: only SEEK_DATA and SEEK_HOLE");
  LUNFS_ASSIGN(auto gl, vol_->glocks.lock({GlockType::kInode, ino}, GlockMode::kShared));
  std::lock_guard lock(vol_->meta_mu);
  LUNFS_ASSIGN(auto node, inode(ino));
  const uint64_t size = node->d.size, bs = vol_->bs;
  if (offset >= size) return error(ENXIO, "offset at or past the end of the file");
  if (!(node->d.flags & kInodeExtents)) {
    // Inline data is all data; a file without layout is one hole.
    if (node->d.flags & kInodeInlineData) return whence == kSeekData ? offset : size;
    return whence == kSeekData ? Result<uint64_t>(error(ENXIO, "no data")) : Result<uint64_t>(size);
  }
  // Unwritten (preallocated) extents count as holes: they read as zeros.
  ExtentTree tree(*vol_, *node, nullptr);
  uint64_t lb = offset / bs;
  for (;;) {
    LUNFS_ASSIGN(auto e, tree.find(lb));
    if (whence == kSeekData) {
      if (!e || e->logical * bs >= size) return error(ENXIO, "no data after the offset");
      if (e->flags & kExtentUnwritten) {
        lb = e->logical_end();
        continue;
      }
      return std::max(offset, e->logical * bs);
    }
    if (!e || e->logical > lb || (e->flags & kExtentUnwritten)) return std::min(size, std::max(offset, lb * bs));
    lb = e->logical_end();
  }
}

}  // namespace lunfs

// Regular-file reads and writes. Data never enters the block cache: it moves between the
// caller's buffer and the device through one block-aligned bounce buffer per request
// (the device does O_DIRECT, and FUSE hands write data at unaligned addresses).
//
// Overwrites of fully allocated, written, whole blocks inside the file run outside the
// metadata mutex (under the inode glock, shared), so concurrent direct I/O to a VM image
// proceeds in parallel. Other whole-block writes (allocating, unwritten-converting,
// extending: a thin VM image's first pass) hold the mutex only for their metadata, in two
// transactions around the data transfer: the first maps the holes as unwritten extents,
// the second, after the data is on the device, marks the range written and grows the
// size (ext4's direct-I/O scheme; docs/core.md). Partial blocks and inline data run under
// the mutex in one transaction, the data written before it is submitted (the journal's
// ordered-data rule).
#include <algorithm>
#include <cstring>

#include "fs/device/aligned_buffer.h"
#include "fs/core/bmap.h"
#include "fs/core/filesystem.h"
#include "fs/device/io_queue.h"
#include "fs/device/scratch_buffer.h"
#include "fs/core/volume.h"

namespace lunfs {

using namespace ondisk;

uint64_t FileSystem::max_file_size() const {
  return ((uint64_t{1} << 63) / vol_->bs - 1) * vol_->bs;
}

Result<std::shared_ptr<CoreInode>> FileSystem::regular_file(uint64_t ino) {
  LUNFS_ASSIGN(auto node, inode(ino));
  if (node->is_dir()) return error(EISDIR, "is a directory");
  if (!node->is_reg()) return error(EINVAL, "not a regular file");
  return node;
}

std::vector<IoTransfer> device_reads(std::span<const Segment> segs, uint64_t first, uint32_t bs,
                                     std::span<std::byte> dest) {
  std::vector<IoTransfer> reads;
  for (const Segment& s : segs) {
    auto part = dest.subspan((s.logical - first) * bs, s.length * bs);
    if (s.physical == 0 || s.unwritten) {
      std::memset(part.data(), 0, part.size());
    } else {
      reads.push_back({IoTransfer::Kind::kRead, s.physical * bs, part});
    }
  }
  return reads;
}

std::vector<IoTransfer> device_writes(std::span<const Segment> segs, uint64_t first, uint32_t bs,
                                      std::span<std::byte> src) {
  std::vector<IoTransfer> writes;
  for (const Segment& s : segs) {
    writes.push_back({IoTransfer::Kind::kWrite, s.physical * bs, src.subspan((s.logical - first) * bs, s.length * bs)});
  }
  return writes;
}

Result<size_t> FileSystem::read(uint64_t ino, uint64_t offset, std::span<std::byte> buf, bool direct) {
  LUNFS_ASSIGN(auto gl, vol_->glocks.lock({GlockType::kInode, ino}, read_mode(direct)));
  const uint64_t bs = vol_->bs;
  std::vector<Segment> segs;
  uint64_t first = 0, len = 0;
  {
    std::lock_guard lock(vol_->meta_mu);
    LUNFS_ASSIGN(auto node, regular_file(ino));
    const uint64_t size = node->d.size;
    if (offset >= size || buf.empty()) return size_t{0};
    len = std::min<uint64_t>(buf.size(), size - offset);
    if (node->d.flags & kInodeInlineData) {
      std::memcpy(buf.data(), node->d.content.data() + offset, len);
      return static_cast<size_t>(len);
    }
    if (!(node->d.flags & kInodeExtents)) {
      std::memset(buf.data(), 0, len);
      return static_cast<size_t>(len);
    }
    first = offset / bs;
    uint64_t last = (offset + len - 1) / bs;
    ExtentTree tree(*vol_, *node, nullptr);
    LUNFS_ASSIGN(segs, tree.map_range(first, last - first + 1));
  }
  // The glock (shared) keeps truncate and punch away while the data moves.
  const uint64_t nblocks = (offset + len - 1) / bs - first + 1;
  // Block-aligned requests into aligned memory (the frontend's direct I/O) need no bounce.
  const bool no_bounce = offset % bs == 0 && len % bs == 0 && is_aligned(buf.data(), kDirectIoMemoryAlignment);
  std::span<std::byte> bounce = no_bounce ? buf.first(len) : scratch_buffer(nblocks * bs);
  for (const IoTransfer& t : device_reads(segs, first, vol_->bs, bounce)) LUNFS_TRY(vol_->dev.read(t.offset, t.buf));
  if (!no_bounce) std::memcpy(buf.data(), bounce.data() + (offset - first * bs), len);
  return static_cast<size_t>(len);
}

Result<std::optional<std::vector<Segment>>> FileSystem::plan_overwrite(CoreInode& node, uint64_t offset, size_t size) {
  const uint64_t bs = vol_->bs;
  const bool aligned = offset % bs == 0 && size % bs == 0;
  const bool inside = offset + size <= node.d.size;
  if (!aligned || !inside || !(node.d.flags & kInodeExtents)) return std::optional<std::vector<Segment>>();
  ExtentTree tree(*vol_, node, nullptr);
  LUNFS_ASSIGN(auto segs, tree.map_range(offset / bs, size / bs));
  bool all_written = std::all_of(segs.begin(), segs.end(), [](const Segment& s) { return s.physical && !s.unwritten; });
  if (!all_written) return std::optional<std::vector<Segment>>();
  // Times are written lazily (inode.h).
  Timespec now = now_timespec();
  node.d.mtime = node.d.ctime = now;
  node.times_dirty = true;
  return std::optional(std::move(segs));
}

Result<size_t> FileSystem::write(uint64_t ino, uint64_t offset, std::span<const std::byte> buf, bool direct) {
  LUNFS_TRY(vol_->check_writable());
  if (buf.empty()) return size_t{0};
  if (offset > max_file_size() || buf.size() > max_file_size() - offset) return error(EFBIG, "write beyond the largest file");
  if (direct) {
    // A direct overwrite of written blocks changes no metadata but the lazily written
    // times: the deferred mode, which other nodes' direct I/O to the same image shares
    // (decision 6).
    LUNFS_ASSIGN(auto gl, vol_->glocks.lock({GlockType::kInode, ino}, GlockMode::kDeferred, kLocalShared));
    std::optional<std::vector<Segment>> overwrite;
    {
      std::lock_guard lock(vol_->meta_mu);
      LUNFS_ASSIGN(auto node, regular_file(ino));
      LUNFS_ASSIGN(overwrite, plan_overwrite(*node, offset, buf.size()));
    }
    if (overwrite) return write_segments(*overwrite, offset, buf);
  }
  // Anything that allocates, converts or extends holds the glock exclusively for the
  // cluster, shared among this node's writers (meta_mu orders their metadata changes).
  return retrying([&]() -> Result<size_t> {
    LUNFS_ASSIGN(auto gl, vol_->glocks.lock({GlockType::kInode, ino}, GlockMode::kExclusive, kLocalShared));
    std::vector<Segment> segs;
    {
      std::unique_lock lock(vol_->meta_mu);
      LUNFS_ASSIGN(auto node, regular_file(ino));
      LUNFS_ASSIGN(auto overwrite, plan_overwrite(*node, offset, buf.size()));
      if (!overwrite) return write_locked(lock, *node, offset, buf);
      segs = std::move(*overwrite);
    }
    return write_segments(segs, offset, buf);
  });
}

Result<size_t> FileSystem::write_segments(const std::vector<Segment>& segs, uint64_t offset,
                                          std::span<const std::byte> buf) {
  // A pure overwrite runs outside the mutex. FUSE hands write data at an unaligned
  // address: copy it for the O_DIRECT device.
  std::span<std::byte> bounce = scratch_buffer(buf.size());
  std::memcpy(bounce.data(), buf.data(), buf.size());
  for (const IoTransfer& t : device_writes(segs, offset / vol_->bs, vol_->bs, bounce)) {
    LUNFS_TRY(vol_->dev.write(t.offset, t.buf));
  }
  return buf.size();
}

Result<size_t> FileSystem::write_inline(CoreInode& node, uint64_t offset, std::span<const std::byte> buf) {
  auto txn = vol_->begin();
  Inode& d = node.d;
  uint64_t end = offset + buf.size();
  if (d.content.size() < end) d.content.resize(end, 0);
  std::memcpy(d.content.data() + offset, buf.data(), buf.size());
  d.size = std::max<uint64_t>(d.size, end);
  d.flags |= kInodeInlineData;
  d.mtime = d.ctime = now_timespec();
  node.dirty(*txn);
  LUNFS_TRY(txn->commit());
  return buf.size();
}

Status FileSystem::unpack_inline(Transaction& txn, CoreInode& node) {
  Inode& d = node.d;
  std::vector<uint8_t> data = std::move(d.content);
  d.content.clear();
  d.flags &= ~kInodeInlineData;
  ExtentTree tree(*vol_, node, &txn);
  if (data.empty()) return tree.clear_nodes();  // an empty extent root
  LUNFS_ASSIGN(Allocator::Run run, vol_->alloc.alloc_blocks(txn, node.ino(), 1));
  AlignedBuffer block(vol_->bs);
  std::memcpy(block.data(), data.data(), data.size());
  LUNFS_TRY(vol_->dev.write(run.start * vol_->bs, block.span()));
  d.blocks += 1;
  return tree.insert({0, run.start, 1, 0});
}

Status FileSystem::allocate_range(Transaction& txn, CoreInode& node, uint64_t first, uint64_t count, bool unwritten) {
  ExtentTree tree(*vol_, node, &txn);
  LUNFS_ASSIGN(auto segs, tree.map_range(first, count));
  for (const Segment& s : segs) {
    if (s.physical != 0) continue;
    for (uint64_t cur = s.logical; cur < s.logical + s.length;) {
      uint64_t goal = tree.goal_for(cur);
      if (goal == 0) goal = node.ino() + 1;
      uint32_t want = static_cast<uint32_t>(std::min<uint64_t>(s.logical + s.length - cur, 1u << 20));
      LUNFS_ASSIGN(Allocator::Run run, vol_->alloc.alloc_blocks(txn, goal, want));
      Extent e{cur, run.start, run.length, unwritten ? kExtentUnwritten : 0u};
      LUNFS_TRY(tree.insert(e));
      node.d.blocks += run.length;
      cur += run.length;
    }
  }
  node.dirty(txn);
  return Status::ok();
}

Status FileSystem::ensure_extent_layout(Transaction& txn, CoreInode& node) {
  if (node.d.flags & kInodeInlineData) return unpack_inline(txn, node);
  if (!(node.d.flags & kInodeExtents)) return ExtentTree(*vol_, node, &txn).clear_nodes();
  return Status::ok();
}

Status FileSystem::mark_written(ExtentTree& tree, uint64_t first, uint64_t count) {
  LUNFS_ASSIGN(auto segs, tree.map_range(first, count));
  for (const Segment& s : segs) {
    if (!s.unwritten) continue;
    LUNFS_TRY(tree.remove(s.logical, s.length, nullptr));
    LUNFS_TRY(tree.insert({s.logical, s.physical, static_cast<uint32_t>(s.length), 0}));
  }
  return Status::ok();
}

Result<size_t> FileSystem::write_locked(std::unique_lock<MetaMutex>& lock, CoreInode& node,
                                        uint64_t offset, std::span<const std::byte> buf) {
  const uint64_t bs = vol_->bs;
  Inode& d = node.d;
  const uint64_t end = offset + buf.size();
  if (writes_inline(node, end)) return write_inline(node, offset, buf);
  if (offset % bs == 0 && buf.size() % bs == 0) return write_whole_blocks(lock, node, offset, buf);

  auto txn = vol_->begin();
  LUNFS_TRY(ensure_extent_layout(*txn, node));
  const uint64_t first = offset / bs, last = (end - 1) / bs;
  const uint64_t count = last - first + 1;
  ExtentTree tree(*vol_, node, txn.get());
  LUNFS_ASSIGN(auto before, tree.map_range(first, count));
  // Allocate the holes (written directly: the data goes there before the commit).
  LUNFS_TRY(allocate_range(*txn, node, first, count, false));
  LUNFS_ASSIGN(auto segs, tree.map_range(first, count));

  std::span<std::byte> bounce = scratch_buffer(count * bs);
  // Edge blocks that already held data are read; the rest of the edge blocks is zeros.
  std::memset(bounce.data(), 0, bs);
  std::memset(bounce.data() + (count - 1) * bs, 0, bs);
  auto was_written = [&](uint64_t lb) {
    for (const Segment& s : before) {
      if (lb >= s.logical && lb < s.logical + s.length) return s.physical != 0 && !s.unwritten;
    }
    return false;
  };
  auto phys_of = [&](uint64_t lb) -> uint64_t {
    for (const Segment& s : segs) {
      if (lb >= s.logical && lb < s.logical + s.length) return s.physical + (lb - s.logical);
    }
    return 0;
  };
  if (offset % bs && was_written(first)) LUNFS_TRY(vol_->dev.read(phys_of(first) * bs, bounce.first(bs)));
  if (end % bs && (last != first || offset % bs == 0) && was_written(last)) {
    LUNFS_TRY(vol_->dev.read(phys_of(last) * bs, bounce.subspan((last - first) * bs, bs)));
  }
  std::memcpy(bounce.data() + (offset - first * bs), buf.data(), buf.size());
  for (const Segment& s : segs) {
    LUNFS_TRY(vol_->dev.write(s.physical * bs, bounce.subspan((s.logical - first) * bs, s.length * bs)));
  }
  LUNFS_TRY(mark_written(tree, first, count));
  d.size = std::max(d.size, end);
  d.mtime = d.ctime = now_timespec();
  node.dirty(*txn);
  LUNFS_TRY(txn->commit());
  return buf.size();
}

Result<size_t> FileSystem::write_whole_blocks(std::unique_lock<MetaMutex>& lock, CoreInode& node,
                                              uint64_t offset, std::span<const std::byte> buf) {
  const uint64_t bs = vol_->bs;
  const uint64_t first = offset / bs, count = buf.size() / bs;
  LUNFS_ASSIGN(std::vector<Segment> segs, map_for_write(node, first, count));
  // The data moves outside the mutex. The inode glock, held locally shared, keeps truncate
  // and punch (locally exclusive) away, so the mapping stays valid; a failure here leaves unwritten
  // extents, as fallocate would.
  lock.unlock();
  std::span<std::byte> bounce = scratch_buffer(buf.size());
  std::memcpy(bounce.data(), buf.data(), buf.size());
  for (const IoTransfer& t : device_writes(segs, first, bs, bounce)) LUNFS_TRY(vol_->dev.write(t.offset, t.buf));
  lock.lock();
  auto txn = vol_->begin();
  LUNFS_TRY(finish_write(*txn, node, first, count, offset + buf.size()));
  LUNFS_TRY(txn->commit());
  return buf.size();
}

bool FileSystem::writes_inline(const CoreInode& node, uint64_t end) const {
  const Inode& d = node.d;
  return end <= inode_content_capacity(vol_->bs) &&
         ((d.flags & kInodeInlineData) || (!(d.flags & kInodeExtents) && d.size == 0));
}

Result<std::vector<Segment>> FileSystem::map_for_write(CoreInode& node, uint64_t first, uint64_t count) {
  // Transaction 1: the holes become unwritten extents, which read as zeros until
  // transaction 2, so neither a concurrent reader nor a crash can see what the newly
  // allocated blocks held before.
  auto txn = vol_->begin();
  LUNFS_TRY(ensure_extent_layout(*txn, node));
  ExtentTree tree(*vol_, node, txn.get());
  LUNFS_ASSIGN(auto segs, tree.map_range(first, count));
  if (std::any_of(segs.begin(), segs.end(), [](const Segment& s) { return s.physical == 0; })) {
    LUNFS_TRY(allocate_range(*txn, node, first, count, true));
    LUNFS_ASSIGN(segs, tree.map_range(first, count));
  }
  LUNFS_TRY(txn->commit());
  return segs;
}

Status FileSystem::finish_write(Transaction& txn, CoreInode& node, uint64_t first, uint64_t count, uint64_t end) {
  // Transaction 2, submitted after the data writes completed (ordered data): the range
  // now holds data, and the size covers it. write_async's writes share one per reap.
  ExtentTree tree(*vol_, node, &txn);
  LUNFS_TRY(mark_written(tree, first, count));
  node.d.size = std::max(node.d.size, end);
  node.d.mtime = node.d.ctime = now_timespec();
  node.dirty(txn);
  return Status::ok();
}

Result<size_t> FileSystem::copy_range(uint64_t ino_in, uint64_t off_in, uint64_t ino_out, uint64_t off_out, size_t len) {
  constexpr size_t kChunk = 1 << 20;
  AlignedBuffer chunk(std::min(len, kChunk));
  size_t done = 0;
  while (done < len) {
    size_t want = std::min(len - done, kChunk);
    LUNFS_ASSIGN(size_t got, read(ino_in, off_in + done, chunk.span().first(want)));
    if (got == 0) break;
    LUNFS_ASSIGN(size_t put, write(ino_out, off_out + done, chunk.span().first(got)));
    done += put;
    if (put < got) break;
  }
  return done;
}

}  // namespace lunfs

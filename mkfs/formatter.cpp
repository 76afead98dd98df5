// mkfs planning and writing.
#include "mkfs/formatter.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdio>
#include <dirent.h>

#include "fs/device/aligned_buffer.h"
#include "fs/format/inode_format.h"
#include "fs/device/parallel_io.h"
#include "fs/format/rgrp_format.h"
#include "fs/format/signature.h"
#include "fs/format/slot_format.h"

namespace lunfs {

using namespace ondisk;

namespace {

constexpr uint32_t kDefaultJournalMib = 128;
constexpr uint32_t kDefaultMaxRgrpMib = 1024;

std::array<uint8_t, 16> random_uuid() {
  std::array<uint8_t, 16> u{};
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (::read(fd, u.data(), u.size()) != static_cast<ssize_t>(u.size())) u.fill(0);
    ::close(fd);
  }
  if (u == std::array<uint8_t, 16>{}) {  // no /dev/urandom: fall back to the clock
    uint64_t t = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    uint64_t h = XXH64(&t, sizeof t, static_cast<uint64_t>(getpid()));
    std::memcpy(u.data(), &t, 8);
    std::memcpy(u.data() + 8, &h, 8);
  }
  u[6] = static_cast<uint8_t>((u[6] & 0x0F) | 0x40);  // version 4
  u[8] = static_cast<uint8_t>((u[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return u;
}

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f %s", v, units[u]);
  return buf;
}

}  // namespace

Result<Superblock> plan_filesystem(const BlockDevice& dev, const MkfsOptions& o) {
  if (!valid_name(o.cluster_name) || !valid_name(o.fs_name)) {
    return error(EINVAL, "cluster and file system names must be 1 to 32 characters of A-Z a-z 0-9 _ -");
  }
  if (o.label.size() > kLabelMax) return error(EINVAL, "label longer than 63 bytes");
  if (o.label.find('\0') != std::string::npos) return error(EINVAL, "label contains a NUL byte");
  if (o.block_size % dev.io_alignment() != 0) {
    return error(EINVAL, "block size " + std::to_string(o.block_size) +
                             " is smaller than the device's sector size " +
                             std::to_string(dev.io_alignment()));
  }
  if (o.block_size < kMinBlockSize || o.block_size > kMaxBlockSize || !std::has_single_bit(o.block_size)) {
    return error(EINVAL, "block size must be a power of two from 1024 to 65536");
  }
  const uint64_t bs = o.block_size;
  const uint64_t block_count = dev.size_bytes() / bs;
  const uint64_t device_mib = dev.size_bytes() >> 20;
  if (o.journals < 1 || o.journals > kMaxJournals) {
    return error(EINVAL, "the number of journals must be between 1 and " + std::to_string(kMaxJournals));
  }

  // Default journals: 128 MiB each, but never more than a quarter of the device between
  // them (down to the 8 MiB minimum), so a small test LUN formats without options.
  uint32_t journal_mib = o.journal_mib.value_or(std::clamp<uint32_t>(
      std::bit_floor(std::max<uint64_t>(1, device_mib / 4 / o.journals)), 8, kDefaultJournalMib));
  // Default resource groups: about 16 or more per file system, 32 MiB to 1 GiB each.
  uint64_t data_mib_estimate = device_mib > uint64_t{journal_mib} * o.journals
                                   ? device_mib - uint64_t{journal_mib} * o.journals
                                   : 0;
  uint32_t rgrp_mib = o.rgrp_mib.value_or(std::clamp<uint32_t>(
      static_cast<uint32_t>(std::bit_floor(std::max<uint64_t>(1, std::min<uint64_t>(data_mib_estimate / 16, kDefaultMaxRgrpMib)))),
      32, kDefaultMaxRgrpMib));

  auto geometry = Geometry::compute(o.block_size, block_count, o.journals,
                                    static_cast<uint32_t>((uint64_t{journal_mib} << 20) / bs),
                                    static_cast<uint32_t>((uint64_t{rgrp_mib} << 20) / bs));
  if (!geometry) {
    if (geometry.err() == ENOSPC) {
      return error(ENOSPC, "device too small (" + human_bytes(dev.size_bytes()) + ") for " +
                               std::to_string(o.journals) + " journals of " +
                               std::to_string(journal_mib) + " MiB plus one resource group; "
                               "use fewer (-j) or smaller (-J) journals");
    }
    return geometry.status();
  }

  Superblock sb;
  sb.geometry = *geometry;
  sb.uuid = o.uuid.value_or(random_uuid());
  sb.label = o.label;
  sb.cluster_name = o.cluster_name;
  sb.fs_name = o.fs_name;
  sb.root_inode = geometry->rgrp(0).first_data;
  sb.csum_seed = XXH64(sb.uuid.data(), sb.uuid.size(), 0);
  sb.dir_hash_seed = XXH64(sb.uuid.data(), sb.uuid.size(), 0x6c756e6673646972ull);
  if (o.now_sec != 0) {
    sb.create_time_sec = o.now_sec;
    sb.create_time_nsec = o.now_nsec;
  } else {
    auto now = std::chrono::system_clock::now().time_since_epoch();
    sb.create_time_sec = std::chrono::duration_cast<std::chrono::seconds>(now).count();
    sb.create_time_nsec = static_cast<uint32_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now).count() % 1000000000);
  }
  return sb;
}

Status write_filesystem(BlockDevice& dev, const Superblock& sb) {
  const Geometry& g = sb.geometry;
  const uint32_t bs = g.block_size;
  const uint64_t seed = sb.csum_seed;
  auto write_blocks = [&](uint64_t block, const AlignedBuffer& buf) {
    return dev.write(block * bs, buf.span());
  };

  // Destroy old signatures: the first 128 KiB (this also clears any stale primary
  // superblock until ours is written last) and the last 1 MiB (GPT backup, md, ...).
  {
    uint64_t head = std::min<uint64_t>(kSignatureWipeHead, g.block_count * bs);
    AlignedBuffer zeros(std::max<uint64_t>(head, kSignatureWipeTail));
    LUNFS_TRY(dev.write(0, std::span(zeros.data(), head)));
    uint64_t dev_end = dev.size_bytes() - dev.size_bytes() % dev.io_alignment();
    uint64_t tail_start = std::max(head, dev_end > kSignatureWipeTail ? dev_end - kSignatureWipeTail : 0);
    tail_start -= tail_start % dev.io_alignment();
    LUNFS_TRY(dev.write(tail_start, std::span(zeros.data(), dev_end - tail_start)));
  }

  // Slot area: slot headers, heartbeats, statfs deltas and the master statfs, contiguous.
  {
    const uint32_t slots = g.journal_count;
    AlignedBuffer area(uint64_t{3 * slots + 1} * bs);
    auto block = [&](uint64_t i) { return area.span().subspan(i * bs, bs); };
    for (uint32_t s = 0; s < slots; ++s) {
      SlotHeader header;
      header.slot = s;
      encode_slot_header(header, block(s), g.slot_header(s), seed);
      Heartbeat hb;
      hb.slot = s;
      encode_heartbeat(hb, block(slots + s), g.heartbeat(s), seed);
      Statfs delta;
      delta.slot = s;
      encode_statfs(delta, block(2 * slots + s), g.statfs_delta(s), seed);
    }
    Statfs master;
    master.free_blocks = static_cast<int64_t>(g.data_blocks_total()) - 1;
    master.dinodes = 1;
    encode_statfs(master, block(3 * slots), g.statfs_block, seed);
    LUNFS_TRY(write_blocks(g.slot_header_start, area));
  }

  // Resource groups. Only rgrp 0 (which holds the root inode) gets its bitmaps now.
  LUNFS_TRY(parallel_for(g.rgrp_count, [&](size_t i) {
    RgrpLocation loc = g.rgrp(static_cast<uint32_t>(i));
    RgrpHeader r;
    r.index = loc.index;
    r.first_data = loc.first_data;
    r.data_blocks = loc.data_blocks;
    r.bitmap_blocks = loc.bitmap_blocks;
    r.free_blocks = loc.data_blocks;
    r.flags = kRgrpBitmapUninit;
    if (i == 0) {
      r.flags = 0;
      r.free_blocks -= 1;
      r.dinodes = 1;
      r.next_generation = 2;
    }
    AlignedBuffer header(bs);
    encode_rgrp_header(r, header.span(), loc.header, 0, seed);
    return write_blocks(loc.header, header);
  }));
  AlignedBuffer one(bs);
  {
    RgrpLocation loc = g.rgrp(0);
    AlignedBuffer bitmaps(uint64_t{loc.bitmap_blocks} * bs);
    for (uint32_t b = 0; b < loc.bitmap_blocks; ++b) {
      BitmapBlock bm;
      bm.rgrp = 0;
      bm.bitmap_index = b;
      bm.bits.assign(bs - kBitmapDataOffset, 0);
      if (b == 0) bm.set(0, BlockState::kDinode);  // the root inode
      encode_bitmap(bm, bitmaps.span().subspan(uint64_t{b} * bs, bs), loc.header + 1 + b, 0, seed);
    }
    LUNFS_TRY(write_blocks(loc.header + 1, bitmaps));
  }

  // Root directory: empty, inline, its own parent.
  {
    Inode root;
    root.mode = S_IFDIR | 0755;
    root.nlink = 2;
    Timespec t{sb.create_time_sec, sb.create_time_nsec};
    root.atime = root.mtime = root.ctime = root.crtime = t;
    root.generation = 1;
    root.flags = kInodeInlineDir;
    root.parent = sb.root_inode;
    encode_inode(root, one.span(), sb.root_inode, 0, seed);
    LUNFS_TRY(write_blocks(sb.root_inode, one));
  }

  // Superblocks last, each behind a flush: until the backup lands nothing looks like
  // lunfs, and once it has, every structure it describes is durable.
  LUNFS_TRY(dev.flush());
  encode_superblock(sb, one.span(), g.backup_sb_block);
  LUNFS_TRY(write_blocks(g.backup_sb_block, one));
  LUNFS_TRY(dev.flush());
  encode_superblock(sb, one.span(), g.sb_block);
  LUNFS_TRY(write_blocks(g.sb_block, one));
  return dev.flush();
}

std::string describe_filesystem(const BlockDevice& dev, const Superblock& sb) {
  const Geometry& g = sb.geometry;
  char buf[2048];
  RgrpLocation r0 = g.rgrp(0);
  std::snprintf(
      buf, sizeof buf,
      "Device:                    %s\n"
      "Block size:                %u\n"
      "Device size:               %s (%llu blocks)\n"
      "Filesystem size:           %s (%llu blocks)\n"
      "Data blocks:               %llu\n"
      "Journals:                  %u\n"
      "Journal size:              %llu MiB\n"
      "Resource groups:           %u\n"
      "Resource group size:       %llu MiB\n"
      "Lock table:                \"%s:%s\"\n"
      "Label:                     \"%s\"\n"
      "UUID:                      %s\n",
      dev.describe().c_str(), g.block_size, human_bytes(dev.size_bytes()).c_str(),
      static_cast<unsigned long long>(dev.size_bytes() / g.block_size),
      human_bytes(g.block_count * g.block_size).c_str(),
      static_cast<unsigned long long>(g.block_count),
      static_cast<unsigned long long>(g.data_blocks_total()), g.journal_count,
      static_cast<unsigned long long>((uint64_t{g.journal_blocks} * g.block_size) >> 20), g.rgrp_count,
      static_cast<unsigned long long>((uint64_t{r0.length} * g.block_size) >> 20),
      sb.cluster_name.c_str(), sb.fs_name.c_str(), sb.label.c_str(), uuid_to_string(sb.uuid).c_str());
  return buf;
}

}  // namespace lunfs

// Superblock codec and layout derivation.
#include "fs/format/superblock.h"

#include <algorithm>
#include <cstdio>

namespace lunfs::ondisk {

namespace {

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

constexpr size_t kBitmapDataOffset = 48;  // header + bitmap subheader

}  // namespace

uint32_t Geometry::blocks_per_bitmap(uint32_t block_size) {
  return (block_size - static_cast<uint32_t>(kBitmapDataOffset)) * 4;
}

Result<Geometry> Geometry::compute(uint32_t block_size, uint64_t block_count,
                                   uint32_t journal_count, uint32_t journal_blocks,
                                   uint32_t rgrp_blocks) {
  if (block_size < kMinBlockSize || block_size > kMaxBlockSize ||
      (block_size & (block_size - 1)) != 0) {
    return error(EINVAL, "block size " + std::to_string(block_size) +
                             " is not a power of two between 1024 and 65536");
  }
  if (journal_count < 1 || journal_count > kMaxJournals) {
    return error(EINVAL, "journal count " + std::to_string(journal_count) +
                             " is outside 1.." + std::to_string(kMaxJournals));
  }
  const uint64_t align = kAlignBytes / block_size;
  uint64_t journal_bytes = uint64_t{journal_blocks} * block_size;
  if (journal_bytes < kMinJournalBytes || journal_bytes > kMaxJournalBytes ||
      journal_blocks % align != 0) {
    return error(EINVAL, "journal size must be a whole number of MiB between 8 MiB and 4 GiB");
  }
  uint64_t rgrp_bytes = uint64_t{rgrp_blocks} * block_size;
  if (rgrp_bytes < kMinRgrpBytes || rgrp_bytes > kMaxRgrpBytes || rgrp_blocks % align != 0) {
    return error(EINVAL, "resource group size must be a whole number of MiB between 32 MiB and 2 GiB");
  }
  if (block_count > (uint64_t{1} << 62) / block_size) {
    return error(EFBIG, "device larger than 4 EiB");
  }

  Geometry g;
  g.block_size = block_size;
  g.block_count = block_count;
  g.journal_count = journal_count;
  g.journal_blocks = journal_blocks;
  g.rgrp_blocks = rgrp_blocks;
  g.sb_block = kSuperblockOffset / block_size;
  g.slot_header_start = g.sb_block + 1;
  g.heartbeat_start = g.slot_header_start + journal_count;
  g.statfs_delta_start = g.heartbeat_start + journal_count;
  g.statfs_block = g.statfs_delta_start + journal_count;
  g.journal_start = align_up(g.statfs_block + 1, align);
  g.rgrp_start = g.journal_start + uint64_t{journal_count} * journal_blocks;
  if (block_count < 2 || g.rgrp_start >= block_count - 1) {
    return error(ENOSPC, "device too small for " + std::to_string(journal_count) + " journals of " +
                             std::to_string(journal_bytes >> 20) + " MiB");
  }
  g.backup_sb_block = block_count - 1;
  uint64_t data_area = g.backup_sb_block - g.rgrp_start;
  uint64_t full = data_area / rgrp_blocks;
  uint64_t rest = data_area % rgrp_blocks;
  uint64_t count = full + (rest * block_size >= kMinLastRgrpBytes ? 1 : 0);
  if (count == 0) {
    return error(ENOSPC, "device too small: after " + std::to_string(journal_count) +
                             " journals of " + std::to_string(journal_bytes >> 20) +
                             " MiB there is no room for a 1 MiB resource group");
  }
  if (count > UINT32_MAX) return error(EFBIG, "too many resource groups");
  g.rgrp_count = static_cast<uint32_t>(count);
  g.full_rgrp_data_offset = static_cast<uint32_t>(g.rgrp(0).first_data - g.rgrp_start);
  return g;
}

RgrpLocation Geometry::rgrp(uint32_t index) const {
  RgrpLocation r;
  r.index = index;
  r.header = rgrp_start + uint64_t{index} * rgrp_blocks;
  r.length = static_cast<uint32_t>(std::min<uint64_t>(rgrp_blocks, backup_sb_block - r.header));
  uint32_t per = blocks_per_bitmap(block_size);
  r.bitmap_blocks = (r.length - 1 + per - 1) / per;
  r.first_data = r.header + 1 + r.bitmap_blocks;
  r.data_blocks = r.length - 1 - r.bitmap_blocks;
  return r;
}

uint64_t Geometry::data_blocks_total() const {
  if (rgrp_count == 0) return 0;
  return uint64_t{rgrp(0).data_blocks} * (rgrp_count - 1) + rgrp(rgrp_count - 1).data_blocks;
}

int64_t Geometry::rgrp_of(uint64_t block) const {
  if (block < rgrp_start || rgrp_count == 0) return -1;
  uint64_t index = (block - rgrp_start) / rgrp_blocks;
  if (index >= rgrp_count) return -1;
  if (index + 1 < rgrp_count) {
    const uint64_t header = rgrp_start + index * rgrp_blocks;
    return block >= header + full_rgrp_data_offset ? static_cast<int64_t>(index) : -1;
  }
  RgrpLocation r = rgrp(static_cast<uint32_t>(index));
  if (block < r.first_data || block >= r.first_data + r.data_blocks) return -1;
  return static_cast<int64_t>(index);
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > kNameMax) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

std::string uuid_to_string(const std::array<uint8_t, 16>& u) {
  char buf[37];
  std::snprintf(buf, sizeof buf,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14],
                u[15]);
  return buf;
}

Result<std::array<uint8_t, 16>> parse_uuid(const std::string& text) {
  std::array<uint8_t, 16> u{};
  size_t n = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '-' && (i == 8 || i == 13 || i == 18 || i == 23)) continue;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (i + 1 >= text.size() || n >= 16 || hex(text[i]) < 0 || hex(text[i + 1]) < 0) {
      return error(EINVAL, "'" + text + "' is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
    }
    u[n++] = static_cast<uint8_t>(hex(text[i]) * 16 + hex(text[i + 1]));
    ++i;
  }
  if (n != 16 || text.size() != 36) {
    return error(EINVAL, "'" + text + "' is not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)");
  }
  return u;
}

// Field offsets: docs/format.md, "Superblock".
void encode_superblock(const Superblock& sb, std::span<std::byte> b, uint64_t blocknr) {
  std::fill(b.begin(), b.end(), std::byte{0});
  const Geometry& g = sb.geometry;
  put<uint32_t>(b, 32, sb.format_version);
  put<uint32_t>(b, 36, g.block_size);
  put<uint64_t>(b, 40, g.block_count);
  put<uint64_t>(b, 48, sb.feature_compat);
  put<uint64_t>(b, 56, sb.feature_ro_compat);
  put<uint64_t>(b, 64, sb.feature_incompat);
  std::memcpy(b.data() + 72, sb.uuid.data(), 16);
  put_text(b, 88, 64, sb.label);
  put_text(b, 152, 32, sb.cluster_name);
  put_text(b, 184, 32, sb.fs_name);
  put<uint32_t>(b, 216, g.journal_count);
  put<uint32_t>(b, 220, g.journal_blocks);
  put<uint64_t>(b, 224, g.slot_header_start);
  put<uint64_t>(b, 232, g.heartbeat_start);
  put<uint64_t>(b, 240, g.statfs_delta_start);
  put<uint64_t>(b, 248, g.statfs_block);
  put<uint64_t>(b, 256, g.journal_start);
  put<uint64_t>(b, 264, g.rgrp_start);
  put<uint32_t>(b, 272, g.rgrp_blocks);
  put<uint32_t>(b, 276, g.rgrp_count);
  put<uint64_t>(b, 280, sb.root_inode);
  put<uint64_t>(b, 288, sb.csum_seed);
  put<uint64_t>(b, 296, sb.dir_hash_seed);
  put<int64_t>(b, 304, sb.create_time_sec);
  put<uint32_t>(b, 312, sb.create_time_nsec);
  put<uint64_t>(b, 320, g.sb_block);
  put<uint64_t>(b, 328, g.backup_sb_block);
  seal_block(b, BlockType::kSuperblock, blocknr, 0, 0);
}

Result<Superblock> decode_superblock(std::span<const std::byte> b, uint64_t blocknr) {
  auto bad = [&](const std::string& what) { return corrupt(BlockType::kSuperblock, blocknr, what); };
  if (b.size() < kMinBlockSize) return bad("buffer smaller than the smallest block size");
  if (get<uint32_t>(b, 0) != kMagic) return bad("no lunfs magic number (not a lunfs device?)");
  uint32_t block_size = get<uint32_t>(b, 36);
  if (block_size < kMinBlockSize || block_size > kMaxBlockSize || (block_size & (block_size - 1))) {
    return bad("impossible block size " + std::to_string(block_size));
  }
  if (b.size() < block_size) return bad("buffer smaller than the block size");
  b = b.first(block_size);
  LUNFS_TRY(verify_block(b, BlockType::kSuperblock, blocknr, 0));

  Superblock sb;
  sb.format_version = get<uint32_t>(b, 32);
  if (sb.format_version != kFormatVersion) {
    return error(ENOTSUP, "superblock: format version " + std::to_string(sb.format_version) +
                              " (this lunfs knows version " + std::to_string(kFormatVersion) + ")");
  }
  sb.feature_compat = get<uint64_t>(b, 48);
  sb.feature_ro_compat = get<uint64_t>(b, 56);
  sb.feature_incompat = get<uint64_t>(b, 64);
  std::memcpy(sb.uuid.data(), b.data() + 72, 16);
  if (get<uint8_t>(b, 88 + 63) != 0) return bad("label is not NUL-terminated");
  sb.label = get_text(b, 88, 64);
  sb.cluster_name = get_text(b, 152, 32);
  sb.fs_name = get_text(b, 184, 32);
  if (!valid_name(sb.cluster_name)) return bad("invalid cluster name");
  if (!valid_name(sb.fs_name)) return bad("invalid file system name");

  auto g = Geometry::compute(block_size, get<uint64_t>(b, 40), get<uint32_t>(b, 216),
                             get<uint32_t>(b, 220), get<uint32_t>(b, 272));
  if (!g) return bad("impossible geometry: " + g.status().message());
  sb.geometry = *g;
  struct Derived {
    const char* name;
    uint64_t stored;
    uint64_t expected;
  } derived[] = {
      {"slot header start", get<uint64_t>(b, 224), g->slot_header_start},
      {"heartbeat start", get<uint64_t>(b, 232), g->heartbeat_start},
      {"statfs delta start", get<uint64_t>(b, 240), g->statfs_delta_start},
      {"statfs block", get<uint64_t>(b, 248), g->statfs_block},
      {"journal start", get<uint64_t>(b, 256), g->journal_start},
      {"resource group start", get<uint64_t>(b, 264), g->rgrp_start},
      {"resource group count", get<uint32_t>(b, 276), g->rgrp_count},
      {"superblock location", get<uint64_t>(b, 320), g->sb_block},
      {"backup superblock location", get<uint64_t>(b, 328), g->backup_sb_block},
  };
  for (const auto& d : derived) {
    if (d.stored != d.expected) {
      return bad(std::string(d.name) + " is " + std::to_string(d.stored) + ", the geometry says " +
                 std::to_string(d.expected));
    }
  }
  if (blocknr != g->sb_block && blocknr != g->backup_sb_block) {
    return bad("found at a block that is neither the primary nor the backup location");
  }
  sb.root_inode = get<uint64_t>(b, 280);
  if (g->rgrp_of(sb.root_inode) < 0) {
    return bad("root inode " + std::to_string(sb.root_inode) + " is outside every resource group");
  }
  sb.csum_seed = get<uint64_t>(b, 288);
  sb.dir_hash_seed = get<uint64_t>(b, 296);
  sb.create_time_sec = get<int64_t>(b, 304);
  sb.create_time_nsec = get<uint32_t>(b, 312);
  if (sb.create_time_nsec >= 1000000000u) return bad("creation time nanoseconds out of range");
  return sb;
}

Status check_features(const Superblock& sb, bool writable) {
  uint64_t unknown_incompat = sb.feature_incompat & ~kKnownIncompat;
  if (unknown_incompat) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "the file system uses incompatible features 0x%llx that this lunfs does not know",
                  static_cast<unsigned long long>(unknown_incompat));
    return error(ENOTSUP, buf);
  }
  uint64_t unknown_ro = sb.feature_ro_compat & ~kKnownRoCompat;
  if (writable && unknown_ro) {
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "the file system uses features 0x%llx that this lunfs can only read; mount it "
                  "read-only",
                  static_cast<unsigned long long>(unknown_ro));
    return error(ENOTSUP, buf);
  }
  return Status::ok();
}

}  // namespace lunfs::ondisk

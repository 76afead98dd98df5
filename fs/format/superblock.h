// The superblock and the geometry it implies. Every location on a lunfs LUN follows from
// a handful of parameters (block size, block count, journal count and size, resource group
// size) by Geometry::compute, so mkfs, fsck and the mount all derive the same layout and
// fsck can check the stored copy against the derivation.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "fs/format/ondisk.h"
#include "fs/result.h"

namespace lunfs::ondisk {

// Feature flags. Version 1 defines none; unknown incompat bits refuse the mount, unknown
// ro_compat bits allow only a read-only mount, unknown compat bits are ignored.
inline constexpr uint64_t kKnownCompat = 0;
inline constexpr uint64_t kKnownRoCompat = 0;
inline constexpr uint64_t kKnownIncompat = 0;

inline constexpr uint32_t kMaxJournals = 256;
inline constexpr uint64_t kMinJournalBytes = 8ull << 20;
inline constexpr uint64_t kMaxJournalBytes = 4ull << 30;
inline constexpr uint64_t kMinRgrpBytes = 32ull << 20;
inline constexpr uint64_t kMaxRgrpBytes = 2ull << 30;
// A trailing partial resource group is kept only when at least this large.
inline constexpr uint64_t kMinLastRgrpBytes = 1ull << 20;
inline constexpr size_t kNameMax = 32;   // cluster and fs names
inline constexpr size_t kLabelMax = 63;  // label bytes (NUL-padded to 64)

struct RgrpLocation {
  uint32_t index = 0;
  uint64_t header = 0;  // block of the rgrp header; bitmaps follow it
  uint32_t length = 0;  // blocks, header included
  uint32_t bitmap_blocks = 0;
  uint64_t first_data = 0;
  uint32_t data_blocks = 0;
};

struct Geometry {
  uint32_t block_size = 0;
  uint64_t block_count = 0;
  uint32_t journal_count = 0;
  uint32_t journal_blocks = 0;
  uint32_t rgrp_blocks = 0;  // stride; the last rgrp may be shorter

  // Derived.
  uint64_t sb_block = 0;
  uint64_t backup_sb_block = 0;
  uint64_t slot_header_start = 0;   // journal_count blocks each, in this order:
  uint64_t heartbeat_start = 0;     //   slot headers, heartbeats, statfs deltas,
  uint64_t statfs_delta_start = 0;  //   then one master statfs block
  uint64_t statfs_block = 0;
  uint64_t journal_start = 0;  // journal i starts at journal_start + i * journal_blocks
  uint64_t rgrp_start = 0;
  uint32_t rgrp_count = 0;
  // Blocks before a full-size group's data area (header + bitmaps): rgrp_of() answers from
  // this without dividing, because every decoded extent checks its blocks with it.
  uint32_t full_rgrp_data_offset = 0;

  static Result<Geometry> compute(uint32_t block_size, uint64_t block_count,
                                  uint32_t journal_count, uint32_t journal_blocks,
                                  uint32_t rgrp_blocks);
  // Data blocks one bitmap block describes (2 bits each).
  static uint32_t blocks_per_bitmap(uint32_t block_size);

  RgrpLocation rgrp(uint32_t index) const;
  uint64_t journal(uint32_t slot) const { return journal_start + uint64_t{slot} * journal_blocks; }
  uint64_t slot_header(uint32_t slot) const { return slot_header_start + slot; }
  uint64_t heartbeat(uint32_t slot) const { return heartbeat_start + slot; }
  uint64_t statfs_delta(uint32_t slot) const { return statfs_delta_start + slot; }
  uint64_t data_blocks_total() const;
  // The resource group whose data area holds `block`, or -1.
  int64_t rgrp_of(uint64_t block) const;
  bool operator==(const Geometry&) const = default;
};

struct Superblock {
  Geometry geometry;
  uint32_t format_version = kFormatVersion;
  uint64_t feature_compat = 0;
  uint64_t feature_ro_compat = 0;
  uint64_t feature_incompat = 0;
  std::array<uint8_t, 16> uuid{};
  std::string label;
  std::string cluster_name;
  std::string fs_name;
  uint64_t root_inode = 0;
  uint64_t csum_seed = 0;      // seed of every non-superblock checksum
  uint64_t dir_hash_seed = 0;  // seed of directory name hashes
  int64_t create_time_sec = 0;
  uint32_t create_time_nsec = 0;
  bool operator==(const Superblock&) const = default;
};

bool valid_name(const std::string& name);  // [A-Za-z0-9_-]{1,32}
std::string uuid_to_string(const std::array<uint8_t, 16>& uuid);
Result<std::array<uint8_t, 16>> parse_uuid(const std::string& text);

void encode_superblock(const Superblock& sb, std::span<std::byte> block, uint64_t blocknr);
// Verifies the header and checks every field for possible values and the geometry for
// consistency with its derivation. Does not judge features (see check_features).
Result<Superblock> decode_superblock(std::span<const std::byte> block, uint64_t blocknr);
// ENOTSUP when the superblock needs features this build does not know (incompat; or
// ro_compat when `writable`).
Status check_features(const Superblock& sb, bool writable);

}  // namespace lunfs::ondisk

// Resource groups: a header with free counts, then allocation bitmaps with two bits per
// data block. A fresh rgrp is marked kRgrpBitmapUninit and its bitmap blocks are never
// written by mkfs (all data blocks free), so mkfs and fsck of a huge LUN touch one block
// per rgrp; the first allocation writes the bitmaps.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "fs/format/ondisk.h"
#include "fs/format/superblock.h"

namespace lunfs::ondisk {

enum class BlockState : uint8_t { kFree = 0, kUsed = 1, kUnlinked = 2, kDinode = 3 };
const char* block_state_name(BlockState s);

inline constexpr uint32_t kRgrpBitmapUninit = 1;

struct RgrpHeader {
  uint32_t index = 0;
  uint32_t flags = 0;
  uint64_t first_data = 0;
  uint32_t data_blocks = 0;
  uint32_t bitmap_blocks = 0;
  uint32_t free_blocks = 0;
  uint32_t dinodes = 0;
  uint32_t unlinked = 0;
  uint64_t next_generation = 1;  // inode generation handed to the next inode allocated here
  bool operator==(const RgrpHeader&) const = default;
};

inline constexpr size_t kBitmapDataOffset = 48;

void encode_rgrp_header(const RgrpHeader& r, std::span<std::byte> b, uint64_t blocknr,
                        uint64_t sequence, uint64_t seed);
// Checks the header against the location the geometry gives for rgrp `loc.index`.
Result<RgrpHeader> decode_rgrp_header(std::span<const std::byte> b, uint64_t blocknr,
                                      uint64_t seed, const RgrpLocation& loc);

// One bitmap block: describes data blocks [bitmap_index * per_block, +per_block) of its rgrp.
struct BitmapBlock {
  uint32_t rgrp = 0;
  uint32_t bitmap_index = 0;
  std::vector<uint8_t> bits;  // block_size - kBitmapDataOffset bytes, 4 blocks per byte
  BlockState state(uint32_t i) const { return static_cast<BlockState>((bits[i / 4] >> (i % 4 * 2)) & 3); }
  void set(uint32_t i, BlockState s) {
    uint8_t& byte = bits[i / 4];
    byte = static_cast<uint8_t>((byte & ~(3u << (i % 4 * 2))) | (static_cast<unsigned>(s) << (i % 4 * 2)));
  }
  bool operator==(const BitmapBlock&) const = default;
};

void encode_bitmap(const BitmapBlock& bm, std::span<std::byte> b, uint64_t blocknr,
                   uint64_t sequence, uint64_t seed);
// `covered` is how many data blocks this bitmap block describes; the bits past it must be 0.
Result<BitmapBlock> decode_bitmap(std::span<const std::byte> b, uint64_t blocknr, uint64_t seed,
                                  const RgrpLocation& loc, uint32_t bitmap_index, uint32_t covered);

}  // namespace lunfs::ondisk

// Resource group header and bitmap codecs. Offsets: docs/format.md, "Resource groups".
#include "fs/format/rgrp_format.h"

#include <algorithm>

namespace lunfs::ondisk {

const char* block_state_name(BlockState s) {
  switch (s) {
    case BlockState::kFree: return "free";
    case BlockState::kUsed: return "used";
    case BlockState::kUnlinked: return "unlinked";
    case BlockState::kDinode: return "inode";
  }
  return "?";
}

void encode_rgrp_header(const RgrpHeader& r, std::span<std::byte> b, uint64_t blocknr,
                        uint64_t sequence, uint64_t seed) {
  std::fill(b.begin(), b.end(), std::byte{0});
  put<uint32_t>(b, 32, r.index);
  put<uint32_t>(b, 36, r.flags);
  put<uint64_t>(b, 40, r.first_data);
  put<uint32_t>(b, 48, r.data_blocks);
  put<uint32_t>(b, 52, r.bitmap_blocks);
  put<uint32_t>(b, 56, r.free_blocks);
  put<uint32_t>(b, 60, r.dinodes);
  put<uint32_t>(b, 64, r.unlinked);
  put<uint64_t>(b, 72, r.next_generation);
  seal_block(b, BlockType::kRgrpHeader, blocknr, sequence, seed);
}

Result<RgrpHeader> decode_rgrp_header(std::span<const std::byte> b, uint64_t blocknr,
                                      uint64_t seed, const RgrpLocation& loc) {
  LUNFS_TRY(verify_block(b, BlockType::kRgrpHeader, blocknr, seed));
  RgrpHeader r;
  r.index = get<uint32_t>(b, 32);
  r.flags = get<uint32_t>(b, 36);
  r.first_data = get<uint64_t>(b, 40);
  r.data_blocks = get<uint32_t>(b, 48);
  r.bitmap_blocks = get<uint32_t>(b, 52);
  r.free_blocks = get<uint32_t>(b, 56);
  r.dinodes = get<uint32_t>(b, 60);
  r.unlinked = get<uint32_t>(b, 64);
  r.next_generation = get<uint64_t>(b, 72);
  auto bad = [&](const std::string& what) { return corrupt(BlockType::kRgrpHeader, blocknr, what); };
  if (r.index != loc.index) return bad("says it is resource group " + std::to_string(r.index));
  if (r.first_data != loc.first_data || r.data_blocks != loc.data_blocks ||
      r.bitmap_blocks != loc.bitmap_blocks) {
    return bad("extent of the resource group disagrees with the superblock's geometry");
  }
  if (r.flags & ~kRgrpBitmapUninit) return bad("unknown flags");
  if (uint64_t{r.free_blocks} + r.dinodes + r.unlinked > r.data_blocks) {
    return bad("free + inode + unlinked counts exceed the data blocks");
  }
  if ((r.flags & kRgrpBitmapUninit) && (r.free_blocks != r.data_blocks)) {
    return bad("bitmap not initialised yet, but not every block is counted free");
  }
  if (r.next_generation == 0) return bad("inode generation counter is 0");
  return r;
}

void encode_bitmap(const BitmapBlock& bm, std::span<std::byte> b, uint64_t blocknr,
                   uint64_t sequence, uint64_t seed) {
  std::fill(b.begin(), b.end(), std::byte{0});
  put<uint32_t>(b, 32, bm.rgrp);
  put<uint32_t>(b, 36, bm.bitmap_index);
  size_t n = std::min(bm.bits.size(), b.size() - kBitmapDataOffset);
  if (n > 0) std::memcpy(b.data() + kBitmapDataOffset, bm.bits.data(), n);
  seal_block(b, BlockType::kBitmap, blocknr, sequence, seed);
}

Result<BitmapBlock> decode_bitmap(std::span<const std::byte> b, uint64_t blocknr, uint64_t seed,
                                  const RgrpLocation& loc, uint32_t bitmap_index, uint32_t covered) {
  LUNFS_TRY(verify_block(b, BlockType::kBitmap, blocknr, seed));
  BitmapBlock bm;
  bm.rgrp = get<uint32_t>(b, 32);
  bm.bitmap_index = get<uint32_t>(b, 36);
  if (bm.rgrp != loc.index || bm.bitmap_index != bitmap_index) {
    return corrupt(BlockType::kBitmap, blocknr,
                   "says it is bitmap " + std::to_string(bm.bitmap_index) + " of resource group " +
                       std::to_string(bm.rgrp));
  }
  bm.bits.assign(reinterpret_cast<const uint8_t*>(b.data()) + kBitmapDataOffset,
                 reinterpret_cast<const uint8_t*>(b.data()) + b.size());
  for (uint32_t i = covered; i < bm.bits.size() * 4; ++i) {
    if (bm.state(i) != BlockState::kFree) {
      return corrupt(BlockType::kBitmap, blocknr, "bits set beyond the end of the resource group");
    }
  }
  return bm;
}

}  // namespace lunfs::ondisk

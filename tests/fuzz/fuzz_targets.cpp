// The fuzzed code paths: every on-disk decoder, and fsck over a damaged image.
#include "tests/fuzz/fuzz_targets.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "fs/format/dir_format.h"
#include "fs/format/extent_format.h"
#include "fs/format/inode_format.h"
#include "fs/format/rgrp_format.h"
#include "fs/format/slot_format.h"
#include "fs/format/superblock.h"
#include "fs/format/xattr_format.h"
#include "fsck/checker.h"
#include "tests/support/image_builder.h"

namespace lunfs::fuzz {

using namespace ondisk;

void decode_one_block(const uint8_t* data, size_t size) {
  if (size < 2) return;
  const uint32_t bs = 1024u << (data[1] % 3);  // 1, 2 or 4 KiB
  std::vector<std::byte> block(bs);
  std::memcpy(block.data(), data + 2, std::min<size_t>(size - 2, bs));
  static const Geometry g = *Geometry::compute(1024, 1 << 20, 2, 8192, 32768);
  static const Geometry g4 = *Geometry::compute(4096, 1 << 18, 2, 2048, 8192);
  const Geometry& geo = bs == 4096 ? g4 : g;
  const uint64_t seed = 0;  // inputs can then carry valid checksums and reach the body checks
  const uint64_t nr = peek_header(block).blocknr;  // let inputs pass the address check too
  RgrpLocation loc = geo.rgrp(0);
  switch (data[0] % 12) {
    case 0: (void)decode_superblock(block, nr); break;
    case 1: (void)decode_slot_header(block, nr, seed, geo); break;
    case 2: (void)decode_heartbeat(block, nr, seed, geo); break;
    case 3: (void)decode_statfs(block, nr, seed, geo); break;
    case 4: (void)decode_rgrp_header(block, nr, seed, loc); break;
    case 5: (void)decode_bitmap(block, nr, seed, loc, 0, std::min(loc.data_blocks, Geometry::blocks_per_bitmap(bs))); break;
    case 6: {
      auto ino = decode_inode(block, nr, seed, geo);
      if (ino) {
        (void)decode_extent_root(ino->content, nr, geo);
        (void)decode_dir_entries(ino->content, ino->dir_entries % 4096, seed, geo, BlockType::kInode, nr);
      }
      break;
    }
    case 7: (void)decode_extent_node(block, nr, seed, get<uint64_t>(block, 32), geo); break;
    case 8: (void)decode_dir_leaf(block, nr, seed, seed, get<uint64_t>(block, 32), geo); break;
    case 9: (void)decode_dir_hash(block, nr, seed, get<uint64_t>(block, 32), get<uint32_t>(block, 40), 1 + data[1] % 64, geo); break;
    case 10: (void)decode_xattr_block(block, nr, seed, get<uint64_t>(block, 32)); break;
    case 11: {
      std::vector<uint8_t> raw(reinterpret_cast<const uint8_t*>(block.data()),
                               reinterpret_cast<const uint8_t*>(block.data()) + bs);
      (void)decode_dir_entries(raw, data[1], seed, geo, BlockType::kDirLeaf, 0);
      break;
    }
  }
}

namespace {

// A small populated image, built once; each run restores the block it damages.
struct Image {
  testing::ImageBuilder builder{64ull << 20};
  std::vector<uint64_t> targets;
  Image() {
    auto& b = builder;
    uint64_t dir = b.mkdir(b.root(), "dir");
    uint64_t hashed = b.mkdir_hashed(b.root(), "hashed");
    uint64_t f = b.create_file(dir, "file", 3, 2, 1);
    b.create_file(hashed, "a", 1, 1, 0);
    b.symlink(dir, "s", "file");
    b.set_xattr(f, "k", "v");
    b.finish();
    const Geometry& g = b.sb().geometry;
    targets = {g.sb_block, g.backup_sb_block, g.slot_header(0), g.heartbeat(1), g.statfs_block,
               g.statfs_delta(0), g.rgrp(0).header, g.rgrp(0).header + 1, g.rgrp(1).header,
               b.root(), dir, hashed, f, b.extent_node_of(f), b.xattr_block_of(f),
               b.leaves_of(hashed)[0], b.leaves_of(hashed)[1]};
  }
};

}  // namespace

void check_damaged_image(const uint8_t* data, size_t size) {
  static Image image;
  if (size < 2) return;
  auto& b = image.builder;
  const uint64_t target = image.targets[data[0] % image.targets.size()];
  const auto original = b.read_block(target);
  auto damaged = original;
  // Overwrite from an offset the input picks; byte 1 bit 7 asks for a reseal so the damage
  // reaches the semantic checks behind the checksum.
  size_t offset = (static_cast<size_t>(data[1] & 0x7f) * 32) % damaged.size();
  std::memcpy(damaged.data() + offset, data + 2, std::min(size - 2, damaged.size() - offset));
  b.write_block(target, damaged);
  if (data[1] & 0x80) b.reseal(target);
  auto report = check_filesystem(b.device());
  (void)report;
  b.write_block(target, original);
}

}  // namespace lunfs::fuzz

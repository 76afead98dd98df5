// Runs the fuzz entry points in every build (and so under ASan/UBSan) on valid blocks of
// every type with random mutations, so the decoders' robustness is tested without clang.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <random>

#include "fs/format/dir_format.h"
#include "fs/format/inode_format.h"
#include "fs/format/rgrp_format.h"
#include "fs/format/superblock.h"
#include "fsck/checker.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tests/support/image_builder.h"

namespace lunfs::fuzz {
namespace {

using namespace ondisk;

// A valid block of each decoder's type (sealed with seed 0, as the fuzz target expects).
std::vector<std::vector<uint8_t>> seeds() {
  std::vector<std::vector<uint8_t>> out;
  const Geometry g = *Geometry::compute(1024, 1 << 20, 2, 8192, 32768);
  std::vector<std::byte> b(1024);
  auto add = [&](uint8_t selector) {
    std::vector<uint8_t> in{selector, 0};
    in.insert(in.end(), reinterpret_cast<uint8_t*>(b.data()), reinterpret_cast<uint8_t*>(b.data()) + b.size());
    out.push_back(in);
  };
  Superblock sb;
  sb.geometry = g;
  sb.cluster_name = 'c';
  sb.fs_name = 'f';
  sb.root_inode = g.rgrp(0).first_data;
  encode_superblock(sb, b, g.sb_block);
  add(0);
  RgrpLocation loc = g.rgrp(0);
  RgrpHeader rh{0, 0, loc.first_data, loc.data_blocks, loc.bitmap_blocks, loc.data_blocks, 0, 0, 1};
  encode_rgrp_header(rh, b, loc.header, 0, 0);
  add(4);
  Inode ino;
  ino.mode = S_IFDIR | 0755;
  ino.nlink = 2;
  ino.generation = 1;
  ino.flags = kInodeInlineDir;
  ino.parent = loc.first_data;
  ino.dir_entries = 1;
  ino.content = encode_dir_entries({{loc.first_data, dir_name_hash(0, "x"), 4, "x"}});
  encode_inode(ino, b, loc.first_data, 0, 0);
  add(6);
  DirLeaf leaf;
  leaf.owner = 5;
  leaf.entries = {{loc.first_data, dir_name_hash(0, "name"), 8, "name"}};
  encode_dir_leaf(leaf, b, loc.first_data + 1, 0, 0);
  add(8);
  return out;
}

TEST(FuzzRegression, DecodersSurviveMutatedBlocks) {
  std::mt19937_64 rng(20261123);
  for (const auto& seed : seeds()) {
    decode_one_block(seed.data(), seed.size());
    for (int i = 0; i < 3000; ++i) {
      auto input = seed;
      int flips = 1 + static_cast<int>(rng() % 8);
      for (int f = 0; f < flips; ++f) input[2 + rng() % (input.size() - 2)] = static_cast<uint8_t>(rng());
      input[0] = static_cast<uint8_t>(rng() % 12);
      decode_one_block(input.data(), input.size());
    }
  }
  // Truncated and empty inputs.
  uint8_t tiny[3] = {6, 1, 0};
  for (size_t n = 0; n <= sizeof tiny; ++n) decode_one_block(tiny, n);
}

TEST(FuzzRegression, FsckSurvivesDamagedImages) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 400; ++i) {
    std::vector<uint8_t> input(2 + 1 + rng() % 200);
    for (auto& byte : input) byte = static_cast<uint8_t>(rng());
    check_damaged_image(input.data(), input.size());
  }
}

TEST(FuzzRegression, ImpossibleEntryCountIsAnErrorNotAnAllocation) {
  // Found by fuzz_check_damaged_image: an inline directory whose inode claims ~10^12
  // entries made the decoder reserve memory for all of them before reading any.
  testing::ImageBuilder b(64ull << 20);
  uint64_t dir = b.mkdir(b.root(), "d");
  b.finish();
  auto block = b.read_block(dir);
  const uint64_t huge = 0xe700214590ull;
  std::memcpy(block.data() + 160, &huge, sizeof huge);  // dir_entries
  b.write_block(dir, block);
  b.reseal(dir);
  auto report = check_filesystem(b.device());
  ASSERT_TRUE(report) << report.status().to_string();
  EXPECT_TRUE(report->mentions("claims " + std::to_string(huge) + " directory entries")) << report->findings.size();
}

TEST(FuzzRegression, ResealedDamageIsNeverReportedClean) {
  // Overwriting the inode table region of the root with zeros behind a valid checksum.
  testing::ImageBuilder b(64ull << 20);
  b.mkdir(b.root(), "d");
  b.finish();
  auto block = b.read_block(b.root());
  std::fill(block.begin() + 32, block.begin() + 64, std::byte{0});
  b.write_block(b.root(), block);
  b.reseal(b.root());
  auto report = check_filesystem(b.device());
  ASSERT_TRUE(report);
  EXPECT_GT(report->errors(), 0u);
}

}  // namespace
}  // namespace lunfs::fuzz

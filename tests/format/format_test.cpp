// On-disk format: every block type round-trips through its codec, and every single-bit
// flip anywhere in every metadata block type is detected.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <functional>
#include <random>

#include "fs/format/dir_format.h"
#include "fs/format/extent_format.h"
#include "fs/format/inode_format.h"
#include "fs/format/rgrp_format.h"
#include "fs/format/slot_format.h"
#include "fs/format/superblock.h"
#include "fs/format/xattr_format.h"

namespace lunfs::ondisk {
namespace {

constexpr uint64_t kSeed = 0x1234567890abcdefull;

class FormatTest : public ::testing::TestWithParam<uint32_t> {
 protected:
  void SetUp() override {
    bs_ = GetParam();
    // 64 GiB, 4 journals of 16 MiB, 256 MiB rgrps.
    auto g = Geometry::compute(bs_, (64ull << 30) / bs_, 4, (16u << 20) / bs_, (256u << 20) / bs_);
    ASSERT_TRUE(g) << g.status().to_string();
    g_ = *g;
    block_.assign(bs_, std::byte{0});
  }
  uint64_t data_block(uint32_t rgrp, uint32_t i) const { return g_.rgrp(rgrp).first_data + i; }

  Superblock sample_superblock() const {
    Superblock sb;
    sb.geometry = g_;
    sb.uuid = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6};
    sb.label = "vm images";
    sb.cluster_name = "prod-cluster";
    sb.fs_name = "vmstore_01";
    sb.root_inode = g_.rgrp(0).first_data;
    sb.csum_seed = kSeed;
    sb.dir_hash_seed = 77;
    sb.create_time_sec = 1700000000;
    sb.create_time_nsec = 123456789;
    return sb;
  }

  uint32_t bs_ = 0;
  Geometry g_;
  std::vector<std::byte> block_;
};

TEST_P(FormatTest, GeometryIsConsistent) {
  EXPECT_EQ(g_.sb_block * bs_, kSuperblockOffset);
  EXPECT_EQ(g_.backup_sb_block, g_.block_count - 1);
  EXPECT_EQ(g_.journal_start * bs_ % kAlignBytes, 0u);
  EXPECT_EQ(g_.rgrp_start * bs_ % kAlignBytes, 0u);
  uint64_t prev_end = g_.rgrp_start;
  for (uint32_t i = 0; i < g_.rgrp_count; ++i) {
    RgrpLocation r = g_.rgrp(i);
    EXPECT_EQ(r.header, prev_end);
    EXPECT_GE(uint64_t{r.bitmap_blocks} * Geometry::blocks_per_bitmap(bs_), r.data_blocks);
    EXPECT_EQ(g_.rgrp_of(r.first_data), i);
    EXPECT_EQ(g_.rgrp_of(r.first_data + r.data_blocks - 1), i);
    EXPECT_EQ(g_.rgrp_of(r.header), -1);
    EXPECT_EQ(g_.rgrp_of(r.first_data - 1), -1) << "the group's last bitmap block is not data";
    prev_end = r.header + r.length;
  }
  EXPECT_LE(prev_end, g_.backup_sb_block);
}

TEST_P(FormatTest, SuperblockRoundTrips) {
  Superblock sb = sample_superblock();
  encode_superblock(sb, block_, g_.sb_block);
  auto back = decode_superblock(block_, g_.sb_block);
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_EQ(*back, sb);
  encode_superblock(sb, block_, g_.backup_sb_block);
  ASSERT_TRUE(decode_superblock(block_, g_.backup_sb_block));
  EXPECT_FALSE(decode_superblock(block_, g_.sb_block)) << "a backup copy must not pass as the primary";
}

TEST_P(FormatTest, SuperblockRejectsInconsistentGeometry) {
  Superblock sb = sample_superblock();
  sb.geometry.rgrp_count += 1;  // stored count disagrees with the derivation
  encode_superblock(sb, block_, g_.sb_block);
  auto back = decode_superblock(block_, g_.sb_block);
  ASSERT_FALSE(back);
  EXPECT_NE(back.status().message().find("resource group count"), std::string::npos) << back.status().message();
}

TEST_P(FormatTest, UnknownIncompatFeatureRefused) {
  Superblock sb = sample_superblock();
  sb.feature_incompat = 1ull << 40;
  EXPECT_EQ(check_features(sb, false).err(), ENOTSUP);
  sb.feature_incompat = 0;
  sb.feature_ro_compat = 1;
  EXPECT_EQ(check_features(sb, true).err(), ENOTSUP);
  EXPECT_TRUE(check_features(sb, false));
  sb.feature_compat = 1;
  sb.feature_ro_compat = 0;
  EXPECT_TRUE(check_features(sb, true));
}

// One encoder and decoder pair per block type, for round trips and bit flips.
struct Codec {
  std::string name;
  uint64_t blocknr;
  std::function<void(std::span<std::byte>)> encode;
  std::function<bool(std::span<const std::byte>)> decodes_equal;
};

std::vector<Codec> all_codecs(const Geometry& g, uint32_t bs) {
  std::vector<Codec> codecs;
  Superblock sb;
  sb.geometry = g;
  sb.uuid = {1, 2, 3};
  sb.cluster_name = "c";
  sb.fs_name = "f";
  sb.root_inode = g.rgrp(0).first_data;
  sb.csum_seed = kSeed;
  codecs.push_back({"superblock", g.sb_block, [=](auto b) { encode_superblock(sb, b, g.sb_block); },
                    [=](auto b) { auto r = decode_superblock(b, g.sb_block); return r && *r == sb; }});

  SlotHeader slot{1, kSlotMounted, 3, 42, 7, 5};
  uint64_t sh = g.slot_header(1);
  codecs.push_back({"slot header", sh, [=](auto b) { encode_slot_header(slot, b, sh, kSeed); },
                    [=](auto b) { auto r = decode_slot_header(b, sh, kSeed, g); return r && *r == slot; }});
  Heartbeat hb{2, 7, HeartbeatState::kLive, 8000, 99, 4, 1700000000000000000, 4000, 4242, 0x1234567890abcdefULL,
               std::string(kHeartbeatHostMax, 'h')};
  uint64_t hbb = g.heartbeat(2);
  codecs.push_back({"heartbeat", hbb, [=](auto b) { encode_heartbeat(hb, b, hbb, kSeed); },
                    [=](auto b) { auto r = decode_heartbeat(b, hbb, kSeed, g); return r && *r == hb; }});
  Statfs master{Statfs::kNoSlot, 1000, 10};
  codecs.push_back({"statfs", g.statfs_block, [=](auto b) { encode_statfs(master, b, g.statfs_block, kSeed); },
                    [=](auto b) { auto r = decode_statfs(b, g.statfs_block, kSeed, g); return r && *r == master; }});
  Statfs delta{3, -20, 4};
  uint64_t db = g.statfs_delta(3);
  codecs.push_back({"statfs delta", db, [=](auto b) { encode_statfs(delta, b, db, kSeed); },
                    [=](auto b) { auto r = decode_statfs(b, db, kSeed, g); return r && *r == delta; }});

  RgrpLocation loc = g.rgrp(1);
  RgrpHeader rh{1, 0, loc.first_data, loc.data_blocks, loc.bitmap_blocks, loc.data_blocks - 30, 20, 2, 55};
  codecs.push_back({"rgrp header", loc.header, [=](auto b) { encode_rgrp_header(rh, b, loc.header, 9, kSeed); },
                    [=](auto b) { auto r = decode_rgrp_header(b, loc.header, kSeed, loc); return r && *r == rh; }});
  BitmapBlock bm;
  bm.rgrp = 1;
  bm.bitmap_index = 0;
  bm.bits.assign(bs - kBitmapDataOffset, 0);
  for (uint32_t i = 0; i < 50; ++i) bm.set(i * 3, static_cast<BlockState>(i % 4));
  uint32_t covered = std::min(loc.data_blocks, Geometry::blocks_per_bitmap(bs));
  codecs.push_back({"bitmap", loc.header + 1, [=](auto b) { encode_bitmap(bm, b, loc.header + 1, 9, kSeed); },
                    [=](auto b) { auto r = decode_bitmap(b, loc.header + 1, kSeed, loc, 0, covered); return r && *r == bm; }});

  uint64_t ino_block = loc.first_data + 5;
  ExtentNode root;
  root.extents = {{0, loc.first_data + 100, 8, 0}, {100, loc.first_data + 200, 16, kExtentUnwritten}};
  Inode ino;
  ino.mode = S_IFREG | 0640;
  ino.uid = 1000;
  ino.gid = 100;
  ino.nlink = 2;
  ino.size = 1 << 20;
  ino.blocks = 24;
  ino.atime = {1, 2};
  ino.mtime = {3, 999999999};
  ino.ctime = {-5, 0};
  ino.crtime = {7, 8};
  ino.generation = 12;
  ino.flags = kInodeExtents;
  ino.xattr_block = loc.first_data + 6;
  ino.content = encode_extent_root(root, bs);
  codecs.push_back({"inode", ino_block, [=](auto b) { encode_inode(ino, b, ino_block, 3, kSeed); },
                    [=](auto b) {
                      auto r = decode_inode(b, ino_block, kSeed, g);
                      if (!r || !(*r == ino)) return false;
                      auto er = decode_extent_root(r->content, ino_block, g);
                      return er && *er == root;
                    }});

  ExtentNode node;
  node.depth = 1;
  node.children = {{0, loc.first_data + 300}, {5000, loc.first_data + 301}};
  uint64_t nb = loc.first_data + 7;
  codecs.push_back({"extent node", nb, [=](auto b) { encode_extent_node(node, ino_block, b, nb, 3, kSeed); },
                    [=](auto b) { auto r = decode_extent_node(b, nb, kSeed, ino_block, g); return r && *r == node; }});

  DirLeaf leaf;
  leaf.owner = ino_block;
  leaf.depth = 0;
  for (std::string name : {std::string("disk0.qcow2"), std::string("config.xml"), std::string("a"), std::string(255, 'z')}) {
    leaf.entries.push_back({loc.first_data + 9, dir_name_hash(77, name), 8, name});
  }
  std::sort(leaf.entries.begin(), leaf.entries.end(),
            [](const DirEntry& a, const DirEntry& b) { return std::tie(a.hash, a.name) < std::tie(b.hash, b.name); });
  uint64_t lb = loc.first_data + 8;
  codecs.push_back({"dir leaf", lb, [=](auto b) { encode_dir_leaf(leaf, b, lb, 3, kSeed); },
                    [=](auto b) { auto r = decode_dir_leaf(b, lb, kSeed, 77, ino_block, g); return r && *r == leaf; }});

  DirHashBlock table{ino_block, 0, {lb, lb, lb, lb}};
  uint64_t tb = loc.first_data + 10;
  codecs.push_back({"dir hash", tb, [=](auto b) { encode_dir_hash(table, b, tb, 3, kSeed); },
                    [=](auto b) { auto r = decode_dir_hash(b, tb, kSeed, ino_block, 0, 4, g); return r && *r == table; }});

  XattrBlock x{ino_block,
               {{XattrNamespace::kUser, "mime", "application/x-qemu-disk"},
                {XattrNamespace::kSecurity, "selinux", "system_u:object_r:svirt_image_t:s0"},
                {XattrNamespace::kPosixAclAccess, "", std::string("\x02\x00\x00\x00", 4)}}};
  uint64_t xb = loc.first_data + 6;
  codecs.push_back({"xattr", xb, [=](auto b) { encode_xattr_block(x, b, xb, 3, kSeed); },
                    [=](auto b) { auto r = decode_xattr_block(b, xb, kSeed, ino_block); return r && *r == x; }});
  return codecs;
}

TEST_P(FormatTest, EveryBlockTypeRoundTrips) {
  for (const auto& c : all_codecs(g_, bs_)) {
    std::fill(block_.begin(), block_.end(), std::byte{0xAA});
    c.encode(block_);
    EXPECT_TRUE(c.decodes_equal(block_)) << c.name;
  }
}

// Exhaustive for 1 KiB and 4 KiB blocks. For 64 KiB blocks (half a million bits, each
// flip re-hashing 64 KiB) every bit of the first 4 KiB and every 61st bit after it.
TEST_P(FormatTest, EverySingleBitFlipIsDetected) {
  for (const auto& c : all_codecs(g_, bs_)) {
    c.encode(block_);
    size_t undetected = 0;
    for (size_t bit = 0; bit < block_.size() * 8; bit += (bs_ > 4096 && bit >= 4096 * 8) ? 61 : 1) {
      block_[bit / 8] ^= std::byte(1u << (bit % 8));
      if (c.decodes_equal(block_)) ++undetected;
      block_[bit / 8] ^= std::byte(1u << (bit % 8));
    }
    EXPECT_EQ(undetected, 0u) << c.name << ": flipped bits that still decoded";
    EXPECT_TRUE(c.decodes_equal(block_)) << c.name;
  }
}

TEST_P(FormatTest, BlockAtTheWrongAddressIsRejected) {
  for (const auto& c : all_codecs(g_, bs_)) {
    c.encode(block_);
    auto h = verify_block(block_, peek_header(block_).type, c.blocknr + 1, c.name == "superblock" ? 0 : kSeed);
    ASSERT_FALSE(h) << c.name;
    EXPECT_NE(h.status().message().find("belongs at block"), std::string::npos) << h.status().message();
  }
}

TEST_P(FormatTest, BlockFromAnotherFileSystemIsRejected) {
  // Same content sealed with another file system's seed: a stale block after re-mkfs.
  for (const auto& c : all_codecs(g_, bs_)) {
    if (c.name == "superblock") continue;
    c.encode(block_);
    BlockHeader h = peek_header(block_);
    seal_block(block_, h.type, h.blocknr, h.sequence, kSeed + 1);
    EXPECT_FALSE(c.decodes_equal(block_)) << c.name;
  }
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, FormatTest, ::testing::Values(1024u, 4096u, 65536u),
                         [](const auto& info) { return "bs" + std::to_string(info.param); });

TEST(FormatValidation, ImpossibleValuesAreErrorsNotCrashes) {
  auto g = *Geometry::compute(4096, 1 << 20, 1, 2048, 8192);
  std::vector<std::byte> b(4096);
  RgrpLocation loc = g.rgrp(0);
  // Extents out of order.
  ExtentNode bad;
  bad.extents = {{10, loc.first_data, 4, 0}, {8, loc.first_data + 10, 4, 0}};
  encode_extent_node(bad, loc.first_data, b, loc.first_data + 1, 0, kSeed);
  EXPECT_FALSE(decode_extent_node(b, loc.first_data + 1, kSeed, loc.first_data, g));
  // Extent pointing at metadata (the rgrp header).
  bad.extents = {{0, loc.header, 1, 0}};
  encode_extent_node(bad, loc.first_data, b, loc.first_data + 1, 0, kSeed);
  EXPECT_FALSE(decode_extent_node(b, loc.first_data + 1, kSeed, loc.first_data, g));
  // Directory entry whose hash does not match its name.
  DirLeaf leaf;
  leaf.owner = loc.first_data;
  leaf.entries = {{loc.first_data, 12345, 8, "name"}};
  encode_dir_leaf(leaf, b, loc.first_data + 2, 0, kSeed);
  auto r = decode_dir_leaf(b, loc.first_data + 2, kSeed, 0, loc.first_data, g);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.err(), EIO);
  // Names a directory may not hold.
  EXPECT_FALSE(valid_entry_name(""));
  EXPECT_FALSE(valid_entry_name("."));
  EXPECT_FALSE(valid_entry_name(".."));
  EXPECT_FALSE(valid_entry_name("a/b"));
  EXPECT_FALSE(valid_entry_name(std::string(256, 'x')));
  EXPECT_TRUE(valid_entry_name(std::string(255, 'x')));
}

// The master statfs block alone may leave [0, size] while slots hold unfolded changes (a
// node folded the frees of blocks a dead node allocated and never folded): only the sum
// is the file system's count. Beyond what all slots together could hold it is damage.
TEST(FormatValidation, StatfsMasterMayExceedTheSizeByWhatTheSlotsHold) {
  auto g = *Geometry::compute(4096, 1 << 20, 4, 2048, 8192);
  const auto total = static_cast<int64_t>(g.data_blocks_total());
  std::vector<std::byte> b(4096);
  for (int64_t free : {total + 500, int64_t{-300}, 5 * total}) {
    encode_statfs(Statfs{Statfs::kNoSlot, free, 3}, b, g.statfs_block, kSeed);
    auto r = decode_statfs(b, g.statfs_block, kSeed, g);
    ASSERT_TRUE(r) << free << ": " << r.status().to_string();
    EXPECT_EQ(r->free_blocks, free);
  }
  for (int64_t free : {5 * total + 1, -5 * total - 1}) {
    encode_statfs(Statfs{Statfs::kNoSlot, free, 3}, b, g.statfs_block, kSeed);
    auto r = decode_statfs(b, g.statfs_block, kSeed, g);
    ASSERT_FALSE(r) << free;
    EXPECT_EQ(r.err(), EIO);
  }
}

// The heartbeat's interval, pid, mount id and host name use bytes version 1 reserved: a
// block written before them (zeros there) still decodes, and a host name that fills its
// field without a terminator is damage, not a read past the field.
TEST(FormatValidation, HeartbeatExtensionFieldsAreCompatible) {
  auto g = *Geometry::compute(4096, 1 << 20, 4, 2048, 8192);
  std::vector<std::byte> b(4096);
  const uint64_t nr = g.heartbeat(1);
  Heartbeat old{1, 3, HeartbeatState::kLive, 10000, 77, 2, 1700000000000000000, 0, 0, 0, ""};
  encode_heartbeat(old, b, nr, kSeed);
  for (size_t i = 72; i < 4096; ++i) ASSERT_EQ(b[i], std::byte{0}) << "byte " << i << " was reserved in version 1";
  auto r = decode_heartbeat(b, nr, kSeed, g);
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(*r, old);
  EXPECT_EQ(r->interval_ms, 0u);
  EXPECT_EQ(r->host, "");

  std::fill(b.begin() + 88, b.begin() + 88 + 64, std::byte{'x'});
  seal_block(b, BlockType::kHeartbeat, nr, 0, kSeed);
  auto bad = decode_heartbeat(b, nr, kSeed, g);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.err(), EIO);
}

TEST(FormatValidation, NamesAndUuids) {
  EXPECT_TRUE(valid_name("cluster_1-a"));
  EXPECT_TRUE(valid_name(std::string(32, 'a')));
  EXPECT_FALSE(valid_name(std::string(33, 'a')));
  EXPECT_FALSE(valid_name("has space"));
  EXPECT_FALSE(valid_name("colon:"));
  auto u = parse_uuid("7be6ce22-2049-4dcc-9cfe-504f600a331e");
  ASSERT_TRUE(u);
  EXPECT_EQ(uuid_to_string(*u), "7be6ce22-2049-4dcc-9cfe-504f600a331e");
  EXPECT_FALSE(parse_uuid("7be6ce22-2049-4dcc-9cfe-504f600a331"));
  EXPECT_FALSE(parse_uuid("zbe6ce22-2049-4dcc-9cfe-504f600a331e"));
}

}  // namespace
}  // namespace lunfs::ondisk

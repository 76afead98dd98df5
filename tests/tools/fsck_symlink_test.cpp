// fsck of symbolic links whose targets live in data blocks (longer than the inode holds):
// the core writes them at the smallest block size, each case damages one and names what
// fsck must say.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>

#include "fs/device/aligned_buffer.h"
#include "fs/format/ondisk.h"
#include "fs/format/rgrp_format.h"
#include "fsck/checker.h"
#include "tests/core/fs_fixture.h"

namespace lunfs {
namespace {

using namespace ondisk;
using testing::FsFixture;

constexpr uint32_t kBs = 1024;
constexpr size_t kLen = 3000;  // three 1 KiB blocks

struct LongSymlink {
  FsFixture t{{.device_bytes = uint64_t{128} << 20, .block_size = kBs}};
  uint64_t ino = 0;
  std::vector<Extent> extents;

  LongSymlink() {
    auto a = t.fs().symlink(t.root(), "long", std::string(kLen, 'x'), {});
    EXPECT_TRUE(a) << a.status().to_string();
    if (!a) return;
    ino = a->ino;
    auto e = t.fs().extents(ino);
    EXPECT_TRUE(e);
    if (e) extents = *e;
    EXPECT_TRUE(t.fs().unmount());
  }

  uint64_t target_block(uint64_t lb) const {
    for (const Extent& e : extents) {
      if (lb >= e.logical && lb < e.logical_end()) return e.physical + (lb - e.logical);
    }
    ADD_FAILURE() << "logical block " << lb << " not mapped";
    return 0;
  }

  AlignedBuffer read(uint64_t block) {
    AlignedBuffer b(kBs);
    EXPECT_TRUE(t.dev().read(block * kBs, b.span()));
    return b;
  }
  void write(uint64_t block, AlignedBuffer& b, bool metadata) {
    if (metadata) {
      BlockHeader h = peek_header(b.span());
      seal_block(b.span(), h.type, h.blocknr, h.sequence, t.fs().superblock().csum_seed);
    }
    EXPECT_TRUE(t.dev().write(block * kBs, b.span()));
  }
  void set_inode_size(uint64_t size) {
    AlignedBuffer b = read(ino);
    std::memcpy(b.data() + 48, &size, 8);
    write(ino, b, true);
  }
};

struct Damage {
  const char* name;
  std::function<void(LongSymlink&)> damage;
  const char* expected;  // a phrase of the finding
};
void PrintTo(const Damage& d, std::ostream* os) { *os << d.name; }

class FsckLongSymlink : public ::testing::TestWithParam<Damage> {};

TEST(FsckLongSymlinkClean, ChecksCleanAsWritten) {
  LongSymlink s;
  ASSERT_EQ(s.extents.size(), 1u);
  EXPECT_EQ(s.extents[0].length, 3u);
  auto report = check_filesystem(s.t.dev());
  ASSERT_TRUE(report) << report.status().to_string();
  EXPECT_EQ(report->errors(), 0u);
}

TEST_P(FsckLongSymlink, IsReportedInWords) {
  LongSymlink s;
  ASSERT_NE(s.ino, 0u);
  GetParam().damage(s);
  auto report = check_filesystem(s.t.dev());
  ASSERT_TRUE(report) << report.status().to_string();
  std::string all;
  for (const auto& f : report->findings) all += f.text + "\n";
  EXPECT_GT(report->errors(), 0u) << "no error found";
  EXPECT_TRUE(report->mentions(GetParam().expected)) << "expected '" << GetParam().expected << "' in:\n" << all;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, FsckLongSymlink,
    ::testing::Values(
        Damage{"nul_in_target",
               [](LongSymlink& s) {
                 AlignedBuffer b = s.read(s.target_block(2));
                 b.data()[17] = std::byte{0};
                 s.write(s.target_block(2), b, false);
               },
               "target holds a NUL byte at offset 2065"},
        Damage{"target_block_free_in_bitmap",
               [](LongSymlink& s) {
                 const uint64_t block = s.target_block(1);
                 const Geometry& g = s.t.fs().superblock().geometry;
                 const RgrpLocation loc = g.rgrp(static_cast<uint32_t>(g.rgrp_of(block)));
                 const uint64_t j = block - loc.first_data;
                 const uint64_t per = Geometry::blocks_per_bitmap(kBs);
                 const uint64_t bitmap = loc.header + 1 + j / per;
                 AlignedBuffer b = s.read(bitmap);
                 auto& byte = reinterpret_cast<uint8_t&>(b.data()[kBitmapDataOffset + (j % per) / 4]);
                 byte = static_cast<uint8_t>(byte & ~(3u << ((j % per) % 4 * 2)));
                 s.write(bitmap, b, true);
               },
               "is marked free in the bitmap"},
        Damage{"target_longer_than_its_blocks", [](LongSymlink& s) { s.set_inode_size(3 * kBs + 1); },
               "target block 3 is not mapped"},
        Damage{"target_shorter_than_its_blocks", [](LongSymlink& s) { s.set_inode_size(kBs); },
               "maps blocks beyond its 1024-byte target"},
        Damage{"target_of_4096_bytes", [](LongSymlink& s) { s.set_inode_size(4096); },
               "symbolic link target of 4096 bytes"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace lunfs

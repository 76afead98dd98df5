// Symbolic link targets of every length Linux accepts (1..4095 bytes, PATH_MAX - 1) at
// every block size: inline in the inode while they fit, in data blocks beyond; through
// remount, journal replay and unlink; a damaged target block reads as EIO.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "fs/device/aligned_buffer.h"
#include "fs/format/inode_format.h"
#include "tests/core/fs_fixture.h"

namespace lunfs {
namespace {

using testing::FsFixture;
using testing::FsLayout;

// A target of `len` bytes that is a path ("dNNN/" components) with a different byte at
// every block boundary, so a block read from the wrong place or order shows.
std::string target_of(size_t len, char tag) {
  std::string s;
  for (int i = 0; s.size() < len; ++i) s += std::string(1, tag) + std::to_string(i) + "/";
  s.resize(len);
  if (s.back() == '/') s.back() = tag;
  return s;
}

// The lengths that matter at block size `bs`: 1, the inline maximum and one more, one
// block minus one, one block, one more, two blocks, 4095.
std::vector<size_t> lengths_for(uint32_t bs) {
  const size_t inline_max = ondisk::symlink_inline_max(bs);
  std::set<size_t> s{1, inline_max, inline_max + 1, bs - 1u, bs, bs + 1u, 2u * bs, ondisk::kSymlinkMaxBytes};
  std::vector<size_t> out;
  for (size_t len : s) {
    if (len >= 1 && len <= ondisk::kSymlinkMaxBytes) out.push_back(len);
  }
  return out;
}

FsLayout small_device(uint32_t bs) { return {.device_bytes = uint64_t{128} << 20, .block_size = bs}; }

class SymlinkLengths : public ::testing::TestWithParam<uint32_t> {};

TEST_P(SymlinkLengths, EveryLengthUpTo4095ReadsBackAndSurvivesRemount) {
  const uint32_t bs = GetParam();
  FsFixture t(small_device(bs));
  ASSERT_TRUE(t.ok());
  const auto lengths = lengths_for(bs);
  for (size_t len : lengths) {
    const std::string name = "l" + std::to_string(len);
    auto a = t.fs().symlink(t.root(), name, target_of(len, 'a'), {});
    ASSERT_TRUE(a) << name << ": " << a.status().to_string();
    EXPECT_EQ(a->size, len);
    auto r = t.fs().readlink(a->ino);
    ASSERT_TRUE(r) << name << ": " << r.status().to_string();
    EXPECT_EQ(*r, target_of(len, 'a')) << name;
    // st_blocks counts the inode block and, beyond the inline maximum, the target's blocks.
    const uint64_t data_blocks = len <= ondisk::symlink_inline_max(bs) ? 0 : (len + bs - 1) / bs;
    EXPECT_EQ(a->blocks512, (1 + data_blocks) * (bs / 512)) << name;
  }
  // As Linux: one byte more than PATH_MAX - 1 is too long, an empty target does not exist.
  EXPECT_EQ(t.fs().symlink(t.root(), "too-long", target_of(4096, 'x'), {}).err(), ENAMETOOLONG);
  EXPECT_EQ(t.fs().symlink(t.root(), "empty", "", {}).err(), ENOENT);
  EXPECT_EQ(t.fs().symlink(t.root(), "nul", std::string("a\0b", 3), {}).err(), EINVAL);
  EXPECT_EQ(t.fs().lookup(t.root(), "too-long").err(), ENOENT);

  ASSERT_TRUE(t.fs().unmount());
  t.mount();
  ASSERT_TRUE(t.ok());
  for (size_t len : lengths) {
    const std::string name = "l" + std::to_string(len);
    auto a = t.fs().lookup(t.root(), name);
    ASSERT_TRUE(a) << name << ": " << a.status().to_string();
    auto r = t.fs().readlink(a->ino);
    ASSERT_TRUE(r) << name << ": " << r.status().to_string();
    EXPECT_EQ(*r, target_of(len, 'a')) << name << " after remount";
  }
  t.expect_clean();
}

// 1 KiB is the smallest block size lunfs has (mkfs.lunfs refuses 512); 64 KiB the largest,
// where every target is inline.
INSTANTIATE_TEST_SUITE_P(BlockSizes, SymlinkLengths, ::testing::Values(1024u, 2048u, 4096u, 65536u),
                         [](const auto& info) { return std::to_string(info.param); });

TEST(Symlink, UnlinkAndRenameOverFreeTheTargetBlocks) {
  FsFixture t(small_device(1024));
  ASSERT_TRUE(t.ok());
  auto before = t.fs().statfs();
  ASSERT_TRUE(before);
  auto a = t.fs().symlink(t.root(), "long", target_of(4095, 'b'), {});
  ASSERT_TRUE(a) << a.status().to_string();
  auto during = t.fs().statfs();
  ASSERT_TRUE(during);
  EXPECT_EQ(before->free_blocks - during->free_blocks, 1u + 4u) << "the inode and four 1 KiB target blocks";
  ASSERT_TRUE(t.fs().unlink(t.root(), "long"));
  auto after = t.fs().statfs();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->free_blocks, before->free_blocks);

  // A long symlink replaced by rename frees its blocks too.
  ASSERT_TRUE(t.fs().symlink(t.root(), "victim", target_of(3000, 'c'), {}));
  ASSERT_TRUE(t.fs().symlink(t.root(), "new", "short", {}));
  ASSERT_TRUE(t.fs().rename(t.root(), "new", t.root(), "victim", 0));
  auto renamed = t.fs().statfs();
  ASSERT_TRUE(renamed);
  EXPECT_EQ(before->free_blocks - renamed->free_blocks, 1u) << "only the short symlink's inode is left";
  t.expect_clean();
}

TEST(Symlink, CommittedLongTargetSurvivesJournalReplayAnUncommittedOneLeavesNothing) {
  FsFixture t({.device_bytes = uint64_t{128} << 20, .block_size = 1024, .journal = true, .faults = true});
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(t.fs().symlink(t.root(), "durable", target_of(4095, 'd'), {}));
  ASSERT_TRUE(t.fs().fsync(t.root(), false));
  // Its blocks are written at once (ordered data), its transaction is never committed.
  ASSERT_TRUE(t.fs().symlink(t.root(), "lost", target_of(2500, 'e'), {}));
  t.crash_and_remount();
  ASSERT_TRUE(t.ok());
  auto a = t.fs().lookup(t.root(), "durable");
  ASSERT_TRUE(a) << a.status().to_string();
  auto r = t.fs().readlink(a->ino);
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(*r, target_of(4095, 'd'));
  EXPECT_EQ(t.fs().lookup(t.root(), "lost").err(), ENOENT);
  t.expect_clean();  // no block of "lost" leaked, none of "durable" free
}

TEST(Symlink, DamagedTargetBlockIsEio) {
  FsFixture t(small_device(1024));
  ASSERT_TRUE(t.ok());
  auto a = t.fs().symlink(t.root(), "long", target_of(3000, 'f'), {});
  ASSERT_TRUE(a) << a.status().to_string();
  auto ext = t.fs().extents(a->ino);
  ASSERT_TRUE(ext);
  ASSERT_FALSE(ext->empty());
  const uint64_t second = ext->front().length > 1 ? ext->front().physical + 1 : (*ext)[1].physical;
  ASSERT_TRUE(t.fs().unmount());
  AlignedBuffer block(1024);
  ASSERT_TRUE(t.dev().read(second * 1024, block.span()));
  block.data()[100] = std::byte{0};  // a NUL inside the target
  ASSERT_TRUE(t.dev().write(second * 1024, block.span()));
  t.mount();
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.fs().readlink(a->ino).err(), EIO);
}

}  // namespace
}  // namespace lunfs

// Deferred reuse of freed blocks (fs/core/allocator.h): a block a transaction frees stays
// unallocatable until the journal commit holding that transaction is durable, because a
// crash before that commit brings the old owner back — with its blocks. Checked through
// what a user sees: file layouts (FIEMAP), contents after a power loss, ENOSPC.
#include <gtest/gtest.h>

#include <string>

#include "tests/core/fs_fixture.h"

namespace lunfs {
namespace {

using testing::FsFixture;
using testing::FsLayout;

std::string pattern(char c, size_t n) { return std::string(n, c); }

Status write_str(FileSystem& fs, uint64_t ino, uint64_t off, const std::string& s) {
  LUNFS_ASSIGN(size_t n, fs.write(ino, off, std::as_bytes(std::span(s))));
  if (n != s.size()) return error(EIO, "short write");
  return Status::ok();
}

Result<std::string> read_all(FileSystem& fs, uint64_t ino) {
  LUNFS_ASSIGN(Attr a, fs.getattr(ino));
  std::string out(a.size, '\0');
  LUNFS_ASSIGN(size_t n, fs.read(ino, 0, std::as_writable_bytes(std::span(out))));
  out.resize(n);
  return out;
}

bool overlaps(const std::vector<ondisk::Extent>& a, const std::vector<ondisk::Extent>& b) {
  for (const auto& x : a) {
    for (const auto& y : b) {
      if (x.physical < y.physical + y.length && y.physical < x.physical + x.length) return true;
    }
  }
  return false;
}

// g's next allocation aims at the block after its last extent, which is where the
// unlinked file f's data lies: the allocator must pass f's blocks over until the unlink is
// committed, take them after it, and a power loss in between must give f back intact.
TEST(DeferredReuse, FreedBlocksWaitForTheirCommit) {
  FsFixture t({.journal = true, .faults = true});
  ASSERT_TRUE(t.ok());
  FileSystem& fs = t.fs();
  const uint32_t bs = fs.superblock().geometry.block_size;
  uint64_t g = t.mkfile(t.root(), "g");
  uint64_t f = t.mkfile(t.root(), "f");
  ASSERT_TRUE(write_str(fs, g, 0, pattern('g', 2 * bs)));
  const std::string f_data = pattern('f', 4 * bs);
  ASSERT_TRUE(write_str(fs, f, 0, f_data));
  ASSERT_TRUE(fs.sync());
  auto g_ext = fs.extents(g);
  auto f_ext = fs.extents(f);
  ASSERT_TRUE(g_ext && f_ext);
  ASSERT_EQ(f_ext->size(), 1u);
  // The premise: f's data follows g's directly, so g's goal is f's first block.
  ASSERT_EQ(g_ext->back().physical + g_ext->back().length, f_ext->front().physical);

  ASSERT_TRUE(fs.unlink(t.root(), "f"));
  ASSERT_TRUE(write_str(fs, g, 2 * bs, pattern('G', 4 * bs)));
  auto grown = fs.extents(g);
  ASSERT_TRUE(grown);
  EXPECT_FALSE(overlaps(*grown, *f_ext)) << "f's blocks reused before its unlink was committed";

  // Power loss before any commit: f is back, whole.
  t.crash_and_remount();
  ASSERT_TRUE(t.ok());
  FileSystem& again = t.fs();
  auto f_attr = again.lookup(again.root(), "f");
  ASSERT_TRUE(f_attr) << f_attr.status().to_string();
  EXPECT_TRUE(*read_all(again, f_attr->ino) == f_data) << "f's data was overwritten";
  EXPECT_EQ(*again.extents(f_attr->ino), *f_ext);

  // Now commit the unlink: g's next allocation at its goal gets f's old blocks.
  ASSERT_TRUE(again.unlink(again.root(), "f"));
  ASSERT_TRUE(again.sync());
  ASSERT_TRUE(write_str(again, g, 2 * bs, pattern('H', 4 * bs)));
  auto reused = again.extents(g);
  ASSERT_TRUE(reused);
  EXPECT_TRUE(overlaps(*reused, *f_ext)) << "f's blocks not reused after the commit";
  EXPECT_TRUE(*read_all(again, g) == pattern('g', 2 * bs) + pattern('H', 4 * bs));
  t.expect_clean();
}

// A full file system whose only free blocks are waiting for a commit: an allocation
// commits the journal and takes them instead of failing with ENOSPC. statfs counts them
// as free all along.
TEST(DeferredReuse, NoEnospcWhileACommitWouldFreeSpace) {
  FsFixture t({.device_bytes = uint64_t{64} << 20, .journal = true});
  ASSERT_TRUE(t.ok());
  FileSystem& fs = t.fs();
  const uint32_t bs = fs.superblock().geometry.block_size;
  uint64_t f = t.mkfile(t.root(), "f");
  ASSERT_TRUE(write_str(fs, f, 0, pattern('f', 16 * bs)));
  // Fill every remaining block with preallocated (unwritten) space.
  uint64_t fill = t.mkfile(t.root(), "fill");
  uint64_t end = 0;
  for (;;) {
    uint64_t free_blocks = fs.statfs()->free_blocks;
    uint64_t want = free_blocks;
    while (want > 0 && !fs.fallocate(fill, 0, end, want * bs)) want /= 2;
    if (want == 0) break;
    end += want * bs;
  }
  ASSERT_TRUE(fs.sync());
  EXPECT_EQ(fs.mknod(t.root(), "x", S_IFREG | 0644, 0, {}).err(), ENOSPC);
  const uint64_t free_before = fs.statfs()->free_blocks;

  ASSERT_TRUE(fs.unlink(t.root(), "f"));
  EXPECT_EQ(fs.statfs()->free_blocks, free_before + 17) << "16 data blocks and the inode block";
  const uint64_t commits = t.journal()->stats().commits;
  uint64_t g = t.mkfile(t.root(), "g");
  ASSERT_NE(g, 0u);
  EXPECT_GT(t.journal()->stats().commits, commits) << "the pinned blocks were taken without a commit";
  ASSERT_TRUE(write_str(fs, g, 0, pattern('g', 15 * bs)));
  EXPECT_TRUE(*read_all(fs, g) == pattern('g', 15 * bs));
  t.expect_clean();
}

}  // namespace
}  // namespace lunfs

// Hashed directories at their limits: overflow chains once the hash table may not grow
// (MountOptions::max_dir_depth makes the limit small enough to reach), chains shrinking,
// leaves merging and the table halving as entries go, and readdir offsets that stay valid
// through all of it.
#include <dirent.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "fs/format/dir_format.h"
#include "tests/core/fs_fixture.h"

namespace lunfs {
namespace {

using testing::FsFixture;
using testing::FsLayout;

// 1 KiB blocks: 64 table pointers per block (initial depth 6), ~40 entries per leaf.
const FsLayout kSmallBlocks{.block_size = 1024};

MountOptions depth_limit(uint32_t depth) {
  MountOptions mo;
  mo.max_dir_depth = depth;
  return mo;
}

std::string name_of(int i) { return "entry-" + std::to_string(i); }

// Every name readdir returns (without "." and ".."), each once.
std::map<std::string, uint64_t> list_all(FileSystem& fs, uint64_t dir) {
  std::map<std::string, uint64_t> out;
  uint64_t off = 0;
  for (;;) {
    size_t got = 0;
    auto st = fs.readdir(dir, off, [&](const DirListing& l) {
      if (l.name != "." && l.name != "..") {
        EXPECT_TRUE(out.emplace(l.name, l.ino).second) << "twice: " << l.name;
      }
      off = l.next_offset;
      return ++got < 100;
    });
    EXPECT_TRUE(st) << st.to_string();
    if (!st || got == 0) break;
  }
  return out;
}

uint64_t dir_blocks(FileSystem& fs, uint64_t dir) {
  auto a = fs.getattr(dir);
  EXPECT_TRUE(a);
  return a ? a->blocks512 : 0;
}

TEST(Directories, OverflowChainsAtTheDepthLimitGrowAndShrink) {
  FsFixture t(kSmallBlocks, depth_limit(6));
  ASSERT_TRUE(t.ok());
  FileSystem& fs = t.fs();
  auto d = fs.mkdir(t.root(), "d", 0755, {});
  ASSERT_TRUE(d);
  std::map<std::string, uint64_t> expect;
  for (int i = 0; i < 6000; ++i) {
    auto a = fs.mknod(d->ino, name_of(i), S_IFREG | 0644, 0, {});
    ASSERT_TRUE(a) << name_of(i) << ": " << a.status().to_string();
    expect[name_of(i)] = a->ino;
  }
  // 64 leaves cannot hold 6000 entries of ~22 bytes in 960-byte leaves: chains exist.
  const uint64_t full_blocks = dir_blocks(fs, d->ino) / 2;
  EXPECT_GT(full_blocks, 64u + 1 + 100);
  for (auto& [n, ino] : expect) ASSERT_EQ(fs.lookup(d->ino, n)->ino, ino) << n;
  EXPECT_EQ(list_all(fs, d->ino), expect);
  EXPECT_EQ(fs.mknod(d->ino, name_of(17), S_IFREG | 0644, 0, {}).err(), EEXIST);

  // Remove all but every 50th: chains give their leaves back.
  for (int i = 0; i < 6000; ++i) {
    if (i % 50 == 0) continue;
    ASSERT_TRUE(fs.unlink(d->ino, name_of(i))) << name_of(i);
    expect.erase(name_of(i));
  }
  EXPECT_LT(dir_blocks(fs, d->ino) / 2, 64u + 1 + 1) << "leaves left behind after removals";
  EXPECT_EQ(list_all(fs, d->ino), expect);
  for (auto& [n, ino] : expect) ASSERT_EQ(fs.lookup(d->ino, n)->ino, ino) << n;
  EXPECT_EQ(fs.lookup(d->ino, name_of(1)).err(), ENOENT);
  t.expect_clean();
}

uint64_t table_blocks(FileSystem& fs, uint64_t dir) {
  auto extents = fs.extents(dir);
  EXPECT_TRUE(extents);
  uint64_t n = 0;
  if (extents) {
    for (const auto& e : *extents) n += e.length;
  }
  return n;
}

TEST(Directories, RemovingEveryEntryShrinksTheTableAndMergesLeavesBack) {
  FsFixture t(kSmallBlocks);
  ASSERT_TRUE(t.ok());
  auto d = t.fs().mkdir(t.root(), "d", 0755, {});
  ASSERT_TRUE(d);
  const int n = 5000;
  for (int i = 0; i < n; ++i) ASSERT_NE(t.mkfile(d->ino, name_of(i)), 0u);
  const uint32_t bs = t.fs().superblock().geometry.block_size;
  EXPECT_GT(dir_blocks(t.fs(), d->ino) / (bs / 512), 100u);
  // The table doubled at least twice (one block holds 64 pointers).
  EXPECT_GE(table_blocks(t.fs(), d->ino), 4u);
  for (int i = 0; i < n; ++i) ASSERT_TRUE(t.fs().unlink(d->ino, name_of(i))) << name_of(i);
  // Back to what the first overflow made: one table block and one leaf, plus the
  // extent-tree node the table's extents needed while it was large.
  EXPECT_EQ(table_blocks(t.fs(), d->ino), 1u);
  EXPECT_LE(dir_blocks(t.fs(), d->ino) / (bs / 512), 3u);
  EXPECT_TRUE(list_all(t.fs(), d->ino).empty());
  t.expect_clean();
  // After a remount the small table grows again as it did the first time.
  t.mount();
  for (int i = 0; i < n; ++i) ASSERT_NE(t.mkfile(d->ino, name_of(i)), 0u);
  EXPECT_GE(table_blocks(t.fs(), d->ino), 4u);
  EXPECT_EQ(list_all(t.fs(), d->ino).size(), static_cast<size_t>(n));
  t.expect_clean();
}

// readdir in batches while removals halve the table under it: the names kept are
// returned exactly once, no name twice.
TEST(Directories, ReaddirOffsetsSurviveTheTableShrinking) {
  FsFixture t(kSmallBlocks);
  ASSERT_TRUE(t.ok());
  FileSystem& fs = t.fs();
  auto d = fs.mkdir(t.root(), "d", 0755, {});
  ASSERT_TRUE(d);
  const int n = 6000;
  std::vector<std::string> doomed;
  std::set<std::string> kept;
  for (int i = 0; i < n; ++i) {
    ASSERT_NE(t.mkfile(d->ino, name_of(i)), 0u);
    if (i % 100 == 0) {
      kept.insert(name_of(i));
    } else {
      doomed.push_back(name_of(i));
    }
  }
  std::shuffle(doomed.begin(), doomed.end(), std::mt19937(3));
  const uint64_t table_before = table_blocks(fs, d->ino);
  std::map<std::string, int> seen;
  uint64_t off = 0;
  for (;;) {
    size_t got = 0;
    ASSERT_TRUE(fs.readdir(d->ino, off, [&](const DirListing& l) {
      if (l.name != "." && l.name != "..") seen[l.name]++;
      off = l.next_offset;
      return ++got < 5;
    }));
    if (got == 0) break;
    for (int k = 0; k < 200 && !doomed.empty(); ++k) {
      ASSERT_TRUE(fs.unlink(d->ino, doomed.back())) << doomed.back();
      doomed.pop_back();
    }
  }
  EXPECT_TRUE(doomed.empty()) << "readdir ended before the removals did";
  EXPECT_LT(table_blocks(fs, d->ino), table_before) << "the table never shrank";
  for (auto& [name, count] : seen) EXPECT_EQ(count, 1) << name << " returned " << count << " times";
  for (const auto& name : kept) EXPECT_EQ(seen.count(name), 1u) << name << " skipped";
  t.expect_clean();
}

// readdir in small batches while names come and go between the batches, with chains and
// merges happening: a name present throughout is returned exactly once, no name twice.
TEST(Directories, ReaddirOffsetsSurviveAddsAndRemovals) {
  FsFixture t(kSmallBlocks, depth_limit(7));
  ASSERT_TRUE(t.ok());
  FileSystem& fs = t.fs();
  auto d = fs.mkdir(t.root(), "d", 0755, {});
  ASSERT_TRUE(d);
  std::set<std::string> present;
  for (int i = 0; i < 8000; ++i) {
    ASSERT_NE(t.mkfile(d->ino, name_of(i)), 0u);
    present.insert(name_of(i));
  }
  std::set<std::string> throughout = present;
  std::mt19937 rng(7);
  int next_name = 8000;
  std::map<std::string, int> seen;
  uint64_t off = 0;
  for (;;) {
    size_t got = 0;
    ASSERT_TRUE(fs.readdir(d->ino, off, [&](const DirListing& l) {
      seen[l.name]++;
      off = l.next_offset;
      return ++got < 37;
    }));
    if (got == 0) break;
    // Churn: remove 30 random names, add 30 new ones.
    for (int k = 0; k < 30; ++k) {
      auto it = present.begin();
      std::advance(it, rng() % present.size());
      ASSERT_TRUE(fs.unlink(d->ino, *it)) << *it;
      throughout.erase(*it);
      present.erase(it);
      std::string fresh = name_of(next_name++);
      ASSERT_NE(t.mkfile(d->ino, fresh), 0u);
      present.insert(fresh);
    }
  }
  for (auto& [name, count] : seen) EXPECT_EQ(count, 1) << name << " returned " << count << " times";
  for (const auto& name : throughout) EXPECT_EQ(seen.count(name), 1u) << name << " skipped";
  EXPECT_GT(throughout.size(), 1000u);
  t.expect_clean();
}

// fsck checks chains: swapping the contents of a chain's first two leaves leaves every
// leaf valid on its own but the chain out of order.
TEST(Directories, FsckFindsAChainOutOfOrder) {
  FsFixture t(kSmallBlocks, depth_limit(6));
  ASSERT_TRUE(t.ok());
  FileSystem& fs = t.fs();
  auto d = fs.mkdir(t.root(), "d", 0755, {});
  ASSERT_TRUE(d);
  for (int i = 0; i < 4000; ++i) ASSERT_NE(t.mkfile(d->ino, name_of(i)), 0u);
  auto table = fs.extents(d->ino);
  ASSERT_TRUE(table && !table->empty());
  const ondisk::Superblock sb = fs.superblock();
  const uint32_t bs = sb.geometry.block_size;
  t.expect_clean();

  BlockDevice& dev = t.dev();
  AlignedBuffer buf(bs);
  ASSERT_TRUE(dev.read(table->front().physical * bs, buf.span()));
  auto hb = ondisk::decode_dir_hash(buf.span(), table->front().physical, sb.csum_seed, d->ino, 0,
                                    ondisk::dir_hash_pointers_per_block(bs), sb.geometry);
  ASSERT_TRUE(hb) << hb.status().to_string();
  auto read_leaf = [&](uint64_t nr) {
    EXPECT_TRUE(dev.read(nr * bs, buf.span()));
    return ondisk::decode_dir_leaf(buf.span(), nr, sb.csum_seed, sb.dir_hash_seed, d->ino, sb.geometry);
  };
  auto write_leaf = [&](uint64_t nr, const ondisk::DirLeaf& leaf) {
    ondisk::encode_dir_leaf(leaf, buf.span(), nr, 1, sb.csum_seed);
    EXPECT_TRUE(dev.write(nr * bs, buf.span()));
  };
  auto head = read_leaf(hb->leaves[0]);
  ASSERT_TRUE(head && head->next != 0) << "no chain at slot 0";
  auto second = read_leaf(head->next);
  ASSERT_TRUE(second);
  std::swap(head->entries, second->entries);
  write_leaf(hb->leaves[0], *head);
  write_leaf(head->next, *second);
  auto report = check_filesystem(dev);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->mentions("does not continue its chain's order"));
}

TEST(Directories, DepthLimitBelowTheInitialTableIsRaisedToIt) {
  FsFixture t(kSmallBlocks, depth_limit(0));
  ASSERT_TRUE(t.ok());
  FileSystem& fs = t.fs();
  for (int i = 0; i < 3000; ++i) ASSERT_NE(t.mkfile(t.root(), name_of(i)), 0u);
  EXPECT_EQ(list_all(fs, t.root()).size(), 3000u);
  t.expect_clean();
}

}  // namespace
}  // namespace lunfs

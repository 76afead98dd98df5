// The statfs glock between mounts of one device (sim_cluster.h): each node counts its
// allocations in its own delta and folds it into the master under the statfs glock; once
// folded, statfs on every node is exact — equal to what fsck counts in the bitmaps — and
// a node with nothing to fold sends no lock request.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "fsck/checker.h"
#include "tests/core/sim_cluster.h"

namespace lunfs::testing {
namespace {

class StatfsGlock : public ::testing::Test {
 protected:
  SimCluster c{3, 5, SimLayout{.block_size = 1024}};
  // Free data blocks as fsck counts them in the bitmaps (every journal home first).
  uint64_t free_per_fsck() {
    for (size_t i = 0; i < c.size(); ++i) EXPECT_TRUE(c.journal(i).checkpoint());
    auto report = check_filesystem(c.dev());
    EXPECT_TRUE(report) << report.status().to_string();
    if (!report) return 0;
    EXPECT_EQ(report->errors(), 0u);
    auto s = c.fs(0).statfs();
    return s ? s->blocks - report->used_blocks : 0;
  }
  void TearDown() override {
    if (c.ok()) c.expect_clean_unmount();
  }
};

TEST_F(StatfsGlock, EveryNodeIsExactOnceTheWritersFolded) {
  ASSERT_TRUE(c.ok());
  auto before = c.fs(2).statfs();
  ASSERT_TRUE(before);
  for (size_t n = 0; n < 2; ++n) {  // two writers
    for (int i = 0; i < 10; ++i) {
      auto f = c.fs(n).mknod(c.root(), "n" + std::to_string(n) + "f" + std::to_string(i), S_IFREG | 0644, 0, {});
      ASSERT_TRUE(f);
      std::string data(5000 * (i + 1), 'x');
      ASSERT_TRUE(c.fs(n).write(f->ino, 0, std::as_bytes(std::span(data.data(), data.size()))));
    }
  }
  ASSERT_TRUE(c.fs(0).fold_statfs());
  ASSERT_TRUE(c.fs(1).fold_statfs());
  std::vector<FsStat> seen;
  for (size_t n = 0; n < c.size(); ++n) {
    auto s = c.fs(n).statfs();
    ASSERT_TRUE(s);
    seen.push_back(*s);
  }
  const uint64_t truth = free_per_fsck();  // (writes every journal home: only now)
  for (size_t n = 0; n < c.size(); ++n) {
    EXPECT_EQ(seen[n].free_blocks, truth) << "node " << n;
    EXPECT_EQ(seen[n].files - seen[n].free_files, before->files - before->free_files + 20) << "node " << n;
  }
  EXPECT_LT(truth, before->free_blocks);
}

TEST_F(StatfsGlock, AWritersOwnStatfsIsExactBeforeItFolds) {
  ASSERT_TRUE(c.ok());
  auto f = c.fs(1).mknod(c.root(), "f", S_IFREG | 0644, 0, {});
  ASSERT_TRUE(f);
  std::string data(300 * 1024, 'y');
  ASSERT_TRUE(c.fs(1).write(f->ino, 0, std::as_bytes(std::span(data.data(), data.size()))));
  auto s = c.fs(1).statfs();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->free_blocks, free_per_fsck());
}

TEST_F(StatfsGlock, ANodeWithNothingToFoldSendsNoLockRequest) {
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c.fs(2).statfs());  // caches the statfs glock shared
  const uint64_t requests = c.lm(2).acquires();
  ASSERT_TRUE(c.fs(2).fold_statfs());
  ASSERT_TRUE(c.fs(2).statfs());
  EXPECT_EQ(c.lm(2).acquires(), requests);
}

TEST_F(StatfsGlock, UnmountFoldsSoTheMasterAloneIsExact) {
  ASSERT_TRUE(c.ok());
  auto f = c.fs(0).mknod(c.root(), "f", S_IFREG | 0644, 0, {});
  ASSERT_TRUE(f);
  std::string data(100 * 1024, 'z');
  ASSERT_TRUE(c.fs(0).write(f->ino, 0, std::as_bytes(std::span(data.data(), data.size()))));
  c.expect_clean_unmount();
  auto report = check_filesystem(c.dev());
  ASSERT_TRUE(report);
  // Every delta is zero after the unmounts: fsck's statfs check is master-only then.
  auto sb = FileSystem::read_superblock(c.dev());
  ASSERT_TRUE(sb);
  for (uint32_t slot = 0; slot < sb->geometry.journal_count; ++slot) {
    std::vector<std::byte> b(sb->geometry.block_size);
    ASSERT_TRUE(c.dev().read(sb->geometry.statfs_delta(slot) * sb->geometry.block_size, b));
    auto d = ondisk::decode_statfs(b, sb->geometry.statfs_delta(slot), sb->csum_seed, sb->geometry);
    ASSERT_TRUE(d) << d.status().to_string();
    EXPECT_EQ(d->free_blocks, 0) << "slot " << slot;
    EXPECT_EQ(d->dinodes, 0) << "slot " << slot;
  }
}

}  // namespace
}  // namespace lunfs::testing

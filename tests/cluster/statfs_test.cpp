// statfs on real Corosync (the fixture: cluster_mount_fixture.h): each node folds its
// allocation counts into the master statfs block under the statfs glock every second, so
// `df` on any node is exact within a second of another node's writes and removals.
#include <sys/statvfs.h>

#include <chrono>
#include <thread>

#include "tests/cluster/cluster_mount_fixture.h"

namespace lunfs::testing {
namespace {

class ClusterStatfs : public ClusterMountSuite {
 protected:
  static void SetUpTestSuite() { set_up_cluster("sf", 3); }

  struct Df {
    uint64_t free_blocks = 0, used_inodes = 0;
    bool operator==(const Df&) const = default;
  };
  static Df df(int node) {
    struct statvfs v {};
    if (statvfs(at(node, "").c_str(), &v) != 0) return {};
    return {v.f_bfree, v.f_files - v.f_ffree};
  }
  // Waits up to `limit` for nodes 2 and 3 to report what node 1 reports; the figures at
  // the end, node 1 first.
  static std::vector<Df> agree_within(std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      std::vector<Df> seen{df(1), df(2), df(3)};
      if ((seen[0] == seen[1] && seen[0] == seen[2]) || std::chrono::steady_clock::now() > deadline) return seen;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
};

TEST_F(ClusterStatfs, DfOnEveryNodeShowsAnotherNodesWritesAndRemovalsWithinASecond) {
  const Df start = agree_within(std::chrono::seconds(3))[0];
  ASSERT_EQ(mkdir(at(1, "many").c_str(), 0755), 0);
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(write_all(at(1, "many/f" + std::to_string(i)), std::string(3000, 'a')));
  ASSERT_TRUE(write_all(at(1, "big.img"), random_bytes(200 << 20, 7)));
  // One fold period plus a margin for a loaded machine.
  auto seen = agree_within(std::chrono::milliseconds(2500));
  EXPECT_EQ(seen[1], seen[0]) << "node 2: " << seen[1].free_blocks << " free, node 1: " << seen[0].free_blocks;
  EXPECT_EQ(seen[2], seen[0]) << "node 3: " << seen[2].free_blocks << " free, node 1: " << seen[0].free_blocks;
  EXPECT_EQ(seen[0].used_inodes, start.used_inodes + 502);
  EXPECT_LE(seen[0].free_blocks + (200 << 20) / 4096, start.free_blocks);

  // Removed on node 2: the space comes back on every node.
  ASSERT_EQ(unlink(at(2, "big.img").c_str()), 0);
  for (int i = 0; i < 500; ++i) ASSERT_EQ(unlink(at(2, "many/f" + std::to_string(i)).c_str()), 0);
  ASSERT_EQ(rmdir(at(2, "many").c_str()), 0);
  seen = agree_within(std::chrono::milliseconds(2500));
  EXPECT_EQ(seen[1], seen[0]);
  EXPECT_EQ(seen[2], seen[0]);
  // The kernels may still hold the removed inodes for a moment (iopen glocks: the last
  // user frees them); give them the same second, then expect the start figures.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!(df(3) == start) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(df(3).free_blocks, start.free_blocks);
  EXPECT_EQ(df(3).used_inodes, start.used_inodes);

  // df(1) as an admin runs it, inside each node: the same line everywhere.
  std::string first;
  for (int n = 1; n <= 3; ++n) {
    Output r = sh(kHarness + " exec " + std::to_string(n) + " df -B1 --output=size,used,avail,iused " + mnt_);
    ASSERT_EQ(r.status, 0) << r.text;
    if (n == 1) first = r.text;
    EXPECT_EQ(r.text, first) << "node " << n;
  }
}

TEST_F(ClusterStatfs, FsckIsCleanAfterEveryNodeUnmounts) { expect_clean_after_every_node_unmounts(3); }

}  // namespace
}  // namespace lunfs::testing

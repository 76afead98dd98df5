// Two of five nodes dying at once (issue 13), one of them the lowest member, which is the
// one that recovers others: the next lowest survivor recovers both, and the three
// survivors read everything each dead node had fsync'd. Its own five-node cluster
// (cluster_mount_fixture.h), all five mounted.
#include <chrono>
#include <thread>

#include "tests/cluster/cluster_mount_fixture.h"

namespace lunfs::testing {
namespace {

class ClusterRecoveryOfTwo : public ClusterMountSuite {
 protected:
  static void SetUpTestSuite() { set_up_cluster("r5", 5, 5); }
};

TEST_F(ClusterRecoveryOfTwo, TwoNodesKilledAtOnceIncludingTheLowestAreBothRecovered) {
  std::map<int, std::string> data;
  for (int n = 1; n <= 5; ++n) {
    const std::string dir = "n" + std::to_string(n);
    ASSERT_EQ(mkdir(at(n, dir).c_str(), 0755), 0) << "node " << n << ": " << strerror(errno);
    data[n] = random_bytes((1 << 20) + n * 1000, n);
    int fd = open(at(n, dir + "/image").c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0) << strerror(errno);
    ASSERT_EQ(write(fd, data[n].data(), data[n].size()), static_cast<ssize_t>(data[n].size()));
    ASSERT_EQ(fsync(fd), 0);
    close(fd);
  }
  // Nodes 1 and 2 die together: both hold their directories and images exclusively.
  Output k1 = sh(kHarness + " kill 1 & " + kHarness + " kill 2 & wait");
  ASSERT_EQ(k1.status, 0) << k1.text;
  for (int reader = 3; reader <= 5; ++reader) {
    for (int dead = 1; dead <= 2; ++dead) {
      const std::string dir = "n" + std::to_string(dead);
      Output ls = sh("timeout -s KILL 60 ls -l " + at(reader, dir) + " > /dev/null");
      ASSERT_EQ(ls.status, 0) << "node " << reader << " could not list node " << dead << "'s directory: " << ls.text;
      EXPECT_EQ(read_all(at(reader, dir + "/image")), data[dead]) << "node " << reader << ", node " << dead;
    }
  }
  EXPECT_EQ(read_all(at(3, "n5/image")), data[5]);
  ASSERT_TRUE(write_all(at(4, "n1/after"), "node 4 writes where node 1 did\n"));
  EXPECT_EQ(read_all(at(5, "n1/after")), "node 4 writes where node 1 did\n");

  for (int n = 3; n <= 5; ++n) {
    Output r = sh(kHarness + " exec " + std::to_string(n) + " umount " + mnt_);
    EXPECT_EQ(r.status, 0) << "node " << n << ": " << r.text;
  }
  for (int n = 1; n <= 2; ++n) sh(kHarness + " exec " + std::to_string(n) + " umount -l " + mnt_);
  Output r = fsck_after_daemons_finish();
  EXPECT_EQ(r.status, 0) << r.text;
}

}  // namespace
}  // namespace lunfs::testing

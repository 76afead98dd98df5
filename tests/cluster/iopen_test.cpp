// iopen glocks on real Corosync (decision 11; the fixture: cluster_mount_fixture.h): a file
// unlinked on node 1 while node 2 has it open stays readable on node 2, byte for byte, even
// while node 1 allocates again; node 2 frees its blocks when it lets go of the file; fsck
// is clean and finds no orphan once every node has unmounted.
#include "tests/cluster/cluster_mount_fixture.h"

namespace lunfs::testing {
namespace {

class ClusterIopen : public ClusterMountSuite {
 protected:
  static void SetUpTestSuite() { set_up_cluster("io", 2); }
};

TEST_F(ClusterIopen, AFileUnlinkedOnOneNodeStaysReadableWhereItIsOpenAndIsFreedWhenClosed) {
  const size_t size = 24 << 20;
  const std::string data = random_bytes(size, 42);
  ASSERT_TRUE(write_all(at(1, "held.img"), data));
  int fd = open(at(2, "held.img").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(unlink(at(1, "held.img").c_str()), 0) << std::strerror(errno);
  struct stat st;
  EXPECT_NE(stat(at(2, "held.img").c_str(), &st), 0);  // the name is gone everywhere
  // Node 1 allocates as much again: the open file's blocks must not be among them.
  ASSERT_TRUE(write_all(at(1, "new.img"), random_bytes(size, 43)));
  std::string back(size, '\0');
  ASSERT_EQ(pread(fd, back.data(), size, 0), static_cast<ssize_t>(size));
  EXPECT_TRUE(back == data) << "the open file's data changed after the unlink on another node";
  ASSERT_EQ(close(fd), 0);
  // The kernel forgets the inode once no dentry refers to it: the failed lookup of the
  // name drops node 2's. Node 2, its last user, frees it then (the next test's fsck finds
  // no orphan: a cluster mount frees none at unmount or mount).
  EXPECT_NE(stat(at(2, "held.img").c_str(), &st), 0);
}

TEST_F(ClusterIopen, FsckFindsNoOrphanAfterEveryNodeUnmounts) {
  for (int n = 1; n <= 2; ++n) {
    Output r = sh(kHarness + " exec " + std::to_string(n) + " umount " + mnt_);
    EXPECT_EQ(r.status, 0) << "node " << n << ": " << r.text;
  }
  Output r = fsck_after_daemons_finish();
  EXPECT_EQ(r.status, 0) << r.text;
  EXPECT_EQ(r.text.find("unlinked while open"), std::string::npos) << r.text;
}

}  // namespace
}  // namespace lunfs::testing

// Cluster mounts on real Corosync (the fixture: tests/cluster/cluster_mount_fixture.h):
// refused mounts, and what one node writes the others read. Nodes 1 and 2 mount at setup,
// node 3 in the first test; the last test unmounts everything and checks the file system
// with fsck.
#include <sys/time.h>
#include <sys/xattr.h>

#include <thread>
#include <vector>

#include "tests/cluster/cluster_mount_fixture.h"

namespace lunfs::testing {
namespace {

class ClusterMount : public ClusterMountSuite {
 protected:
  // Nodes 1 and 2 here; node 3 in the first test, after a refused mount.
  static void SetUpTestSuite() { set_up_cluster("lm", 2); }
};

TEST_F(ClusterMount, MountsRefuseAnotherClusterASharedSlotAndANolockMount) {
  // The lock table names another cluster: refused, naming both.
  const std::string other = dir_ + "/other.img";
  ASSERT_EQ(sh("truncate -s 256M " + other + " && " + kBin + "/mkfs.lunfs -q -t elsewhere:fs -j 2 " + other).status, 0);
  Output r = sh(kHarness + " exec 3 " + kBin + "/mount.lunfs " + other + " " + mnt_ + " -o lockproto=corosync");
  EXPECT_EQ(r.status, 32) << r.text;
  EXPECT_NE(r.text.find("\"elsewhere\""), std::string::npos) << r.text;
  EXPECT_NE(r.text.find("\"" + prefix() + "\""), std::string::npos) << r.text;
  // Node 1 took the lowest free slot (0): node 3 cannot have it.
  r = mount(3, ",slot=0");
  EXPECT_EQ(r.status, 32) << r.text;
  EXPECT_NE(r.text.find("slot 0 is in use"), std::string::npos) << r.text;
  // A single-host mount of a LUN that cluster mounts use on this host.
  r = sh(kBin + "/mount.lunfs " + lun_ + " " + mnt_ + " -o lockproto=nolock");
  EXPECT_EQ(r.status, 32) << r.text;
  // A second cluster mount on one node would join the lock space twice.
  r = mount(1, "");
  EXPECT_EQ(r.status, 32) << r.text;
  EXPECT_NE(r.text.find("mounted on this node already"), std::string::npos) << r.text;
  r = mount(3, "");
  ASSERT_EQ(r.status, 0) << r.text;
  struct stat st;
  EXPECT_EQ(stat(at(3, "").c_str(), &st), 0);
}

TEST_F(ClusterMount, FileWrittenOnOneNodeReadsIdenticalOnTheOthers) {
  const std::string data = random_bytes(3 << 20 | 12345, 1);
  ASSERT_TRUE(write_all(at(1, "written-on-1"), data));
  EXPECT_TRUE(read_all(at(2, "written-on-1")) == data);
  EXPECT_TRUE(read_all(at(3, "written-on-1")) == data);
  // And back: node 3 overwrites part of it, node 1 (which wrote it last) reads the change.
  int fd = open(at(3, "written-on-1").c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "node3", 5, 4096), 5);
  ASSERT_EQ(close(fd), 0);
  std::string expect = data;
  expect.replace(4096, 5, "node3");
  EXPECT_TRUE(read_all(at(1, "written-on-1")) == expect);
}

TEST_F(ClusterMount, ThousandFilesCreatedOnOneNodeAreListedWithTheirSizesOnAnother) {
  ASSERT_EQ(mkdir(at(1, "many").c_str(), 0755), 0);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(write_all(at(1, "many/f" + std::to_string(i)), std::string(static_cast<size_t>(i * 7), 'x'))) << i;
  }
  std::map<std::string, off_t> seen;
  DIR* d = opendir(at(2, "many").c_str());
  ASSERT_NE(d, nullptr);
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    ASSERT_EQ(fstatat(dirfd(d), e->d_name, &st, 0), 0) << name;
    seen[name] = st.st_size;
  }
  closedir(d);
  ASSERT_EQ(seen.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(seen["f" + std::to_string(i)], i * 7) << i;
}

TEST_F(ClusterMount, RenameOnOneNodeIsSeenOnAnother) {
  ASSERT_TRUE(write_all(at(1, "before"), "renamed content"));
  struct stat st;
  ASSERT_EQ(stat(at(3, "before").c_str(), &st), 0);  // node 3 knows the old name
  ASSERT_EQ(rename(at(2, "before").c_str(), at(2, "after").c_str()), 0);
  EXPECT_NE(stat(at(3, "before").c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(read_all(at(3, "after")), "renamed content");
}

TEST_F(ClusterMount, ModeTimesAndXattrsChangedOnOneNodeAreSeenOnTheOthers) {
  ASSERT_TRUE(write_all(at(1, "attrs"), "a"));
  // Open descriptors on nodes 2 and 3: fstat answers from the kernel's attribute cache,
  // which the change on node 1 must have invalidated there.
  int fd2 = open(at(2, "attrs").c_str(), O_RDONLY | O_CLOEXEC), fd3 = open(at(3, "attrs").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd2, 0);
  ASSERT_GE(fd3, 0);
  struct stat st;
  ASSERT_EQ(fstat(fd2, &st), 0);
  ASSERT_EQ(st.st_mode & 07777, 0644u);
  ASSERT_EQ(fstat(fd3, &st), 0);
  ASSERT_EQ(chmod(at(1, "attrs").c_str(), 0600), 0);
  const timeval times[2] = {{1000000000, 0}, {1234567890, 0}};
  ASSERT_EQ(utimes(at(1, "attrs").c_str(), times), 0);
  ASSERT_EQ(setxattr(at(1, "attrs").c_str(), "user.vm", "migrated", 8, 0), 0);
  for (int fd : {fd2, fd3}) {
    ASSERT_EQ(fstat(fd, &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_EQ(st.st_mtime, 1234567890);
    EXPECT_EQ(st.st_atime, 1000000000);
    char v[32] = {};
    EXPECT_EQ(fgetxattr(fd, "user.vm", v, sizeof v), 8);
    EXPECT_STREQ(v, "migrated");
    close(fd);
  }
  // A growing file: node 2's cached size follows node 1's appends.
  int fd = open(at(2, "attrs").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(fstat(fd, &st), 0);
  ASSERT_EQ(st.st_size, 1);
  ASSERT_TRUE(write_all(at(1, "attrs"), std::string(70000, 'b')));
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 70000);
  close(fd);
}

TEST_F(ClusterMount, TwoNodesWriteOnePreallocatedImageWithODirect) {
  constexpr size_t kImage = 16 << 20, kChunk = 1 << 20;
  {
    int fd = open(at(1, "vm.img").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(fallocate(fd, 0, 0, kImage), 0);
    ASSERT_EQ(fsync(fd), 0);
    close(fd);
  }
  // Node 1 writes the even MiBs, node 2 the odd ones, at the same time.
  auto writer = [&](int node, size_t first, bool* ok) {
    int fd = open(at(node, "vm.img").c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
    if (fd < 0) return;
    void* buf = nullptr;
    if (posix_memalign(&buf, 4096, kChunk) != 0) return;
    bool good = true;
    for (size_t i = first; i < kImage / kChunk; i += 2) {
      std::memset(buf, 'A' + static_cast<int>(i), kChunk);
      good &= pwrite(fd, buf, kChunk, static_cast<off_t>(i * kChunk)) == static_cast<ssize_t>(kChunk);
    }
    good &= fsync(fd) == 0;
    free(buf);
    *ok = close(fd) == 0 && good;
  };
  bool ok1 = false, ok2 = false;
  std::thread t1(writer, 1, 0, &ok1), t2(writer, 2, 1, &ok2);
  t1.join();
  t2.join();
  ASSERT_TRUE(ok1);
  ASSERT_TRUE(ok2);
  const std::string image = read_all(at(3, "vm.img"));
  ASSERT_EQ(image.size(), kImage);
  for (size_t i = 0; i < kImage / kChunk; ++i) {
    EXPECT_EQ(image.find_first_not_of(static_cast<char>('A' + i), i * kChunk), (i + 1) * kChunk == kImage
                                                                                   ? std::string::npos
                                                                                   : (i + 1) * kChunk)
        << "MiB " << i;
  }
}

// Last: every node unmounts cleanly (its locks go back through the lock space), and the
// file system they shared is consistent.
TEST_F(ClusterMount, FsckIsCleanAfterEveryNodeUnmounts) { expect_clean_after_every_node_unmounts(3); }

}  // namespace
}  // namespace lunfs::testing

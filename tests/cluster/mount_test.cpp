// Cluster mounts on real Corosync: a 3-node lunfs-cluster shares one LUN file, and each node
// mounts it with `mount.lunfs LUN MNT -o lockproto=corosync` as an admin types it (through
// `lunfs-cluster exec`). Every node mounts on the same path, inside its own mount
// namespace; the test reaches node N's view of it through /proc/<N's anchor>/root. What one
// node writes, the others must read. Needs root and corosync; skipped otherwise. The
// cluster and the mounts are set up once for the suite; the last test unmounts everything
// and checks the file system with fsck. Teardown (`lunfs-cluster down`, which unmounts
// whatever is still mounted first) runs also when a test fails.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace lunfs::testing {
namespace {

const std::string kHarness = LUNFS_CLUSTER_HARNESS;
const std::string kBin = LUNFS_BIN_DIR;

std::string prefix() { return "lm" + std::to_string(getpid() % 100000); }

struct Output {
  int status;
  std::string text;
};
// Runs `cmd` with the cluster's prefix, stdout and stderr together.
Output sh(const std::string& cmd) {
  std::string full = "LUNFS_CLUSTER_PREFIX=" + prefix() + " " + cmd + " 2>&1";
  Output out{-1, ""};
  if (FILE* f = popen(full.c_str(), "r")) {
    char b[4096];
    size_t n;
    while ((n = fread(b, 1, sizeof b, f)) > 0) out.text.append(b, n);
    int st = pclose(f);
    out.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  return out;
}

std::string read_all(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return "<cannot open " + p + ": " + std::strerror(errno) + ">";
  return std::string((std::istreambuf_iterator<char>(f)), {});
}

bool write_all(const std::string& p, const std::string& data) {
  int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return false;
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  return close(fd) == 0 && ok;
}

std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class ClusterMount : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    prctl(PR_SET_CHILD_SUBREAPER, 1);  // the daemons that mount.lunfs leaves behind
    if (geteuid() != 0) {
      skip_ = "needs root (namespaces, FUSE, corosync)";
      return;
    }
    if (std::system("command -v corosync >/dev/null 2>&1") != 0 || access("/dev/fuse", R_OK | W_OK) != 0) {
      skip_ = "needs corosync and /dev/fuse";
      return;
    }
    char tmpl[] = "/var/tmp/lunfs-cluster-mount-XXXXXX";
    if (!mkdtemp(tmpl)) {
      setup_error_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    lun_ = dir_ + "/lun.img";
    mnt_ = dir_ + "/mnt";
    mkdir(mnt_.c_str(), 0755);
    Output r = sh("truncate -s 2G " + lun_ + " && " + kBin + "/mkfs.lunfs -q -t " + prefix() + ":vmstore -j 4 " + lun_);
    if (r.status != 0) {
      setup_error_ = "mkfs.lunfs: " + r.text;
      return;
    }
    r = sh(kHarness + " up 3");
    if (r.status != 0) {
      setup_error_ = "lunfs-cluster up 3: " + r.text;
      return;
    }
    for (int n = 1; n <= 3; ++n) {
      std::ifstream f("/run/lunfs-cluster/" + prefix() + "/n" + std::to_string(n) + "/anchor.pid");
      f >> anchors_[n];
    }
    // Nodes 1 and 2 here; node 3 in the first test, after a refused mount.
    for (int n = 1; n <= 2; ++n) {
      r = mount(n, "");
      if (r.status != 0) {
        setup_error_ = "mount on node " + std::to_string(n) + ": " + r.text;
        return;
      }
    }
  }
  static void TearDownTestSuite() {
    if (!skip_.empty()) return;
    Output r = sh(kHarness + " down");
    if (r.status != 0) std::fprintf(stderr, "lunfs-cluster down: %s\n", r.text.c_str());
    while (waitpid(-1, nullptr, WNOHANG) > 0) {}
    if (!dir_.empty() && !getenv("LUNFS_KEEP_TEST_DIR")) sh("rm -rf " + dir_);
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << "cluster mount tests skipped: " << skip_;
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
  }

  static Output mount(int node, const std::string& extra_options) {
    return sh(kHarness + " exec " + std::to_string(node) + " " + kBin + "/mount.lunfs " + lun_ + " " + mnt_ +
              " -o lockproto=corosync" + extra_options);
  }
  // Node `node`'s view of `rel` under the mount point.
  static std::string at(int node, const std::string& rel) {
    return "/proc/" + std::to_string(anchors_[node]) + "/root" + mnt_ + "/" + rel;
  }

  static inline std::string skip_, setup_error_, dir_, lun_, mnt_;
  static inline std::map<int, pid_t> anchors_;
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
  int fd = open(at(3, "written-on-1").c_str(), O_WRONLY);
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
  int fd2 = open(at(2, "attrs").c_str(), O_RDONLY), fd3 = open(at(3, "attrs").c_str(), O_RDONLY);
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
  int fd = open(at(2, "attrs").c_str(), O_RDONLY);
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
    int fd = open(at(1, "vm.img").c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(fallocate(fd, 0, 0, kImage), 0);
    ASSERT_EQ(fsync(fd), 0);
    close(fd);
  }
  // Node 1 writes the even MiBs, node 2 the odd ones, at the same time.
  auto writer = [&](int node, size_t first, bool* ok) {
    int fd = open(at(node, "vm.img").c_str(), O_RDWR | O_DIRECT);
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
TEST_F(ClusterMount, FsckIsCleanAfterEveryNodeUnmounts) {
  for (int n = 1; n <= 3; ++n) {
    Output r = sh(kHarness + " exec " + std::to_string(n) + " umount " + mnt_);
    EXPECT_EQ(r.status, 0) << "node " << n << ": " << r.text;
  }
  // The daemons hold a shared claim on the LUN until they have finished.
  Output r = sh("timeout 60 flock -x " + lun_ + " true");
  ASSERT_EQ(r.status, 0) << "the daemons did not finish: " << r.text;
  r = sh(kBin + "/fsck.lunfs -n " + lun_);
  EXPECT_EQ(r.status, 0) << r.text;
}

}  // namespace
}  // namespace lunfs::testing

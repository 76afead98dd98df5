// Symbolic links with long targets through a real mount, against the host's ext4 (a
// directory under /var/tmp): every target length up to PATH_MAX - 1 is accepted and read
// back, 4096 is ENAMETOOLONG, a long target through deep directories resolves, targets
// survive a remount, and unlinking gives the target blocks back. At the default 4 KiB
// blocks and at 1 KiB, the smallest lunfs has. fsck.lunfs -n must be clean after each test
// (mount_fixture.h).
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/fuse/mount_fixture.h"

namespace lunfs::testing {
namespace {

struct LinkResult {
  int err = 0;  // errno of symlink(), 0 when it succeeded
  std::string target;
  off_t size = -1;
  bool operator==(const LinkResult&) const = default;
};

std::ostream& operator<<(std::ostream& os, const LinkResult& r) {
  return os << "{errno " << r.err << ", " << r.target.size() << "-byte target, st_size " << r.size << "}";
}

// symlink(), then readlink() and lstat() of what it made.
LinkResult make_link(const std::string& target, const std::string& link) {
  LinkResult r;
  if (symlink(target.c_str(), link.c_str()) != 0) {
    r.err = errno;
    return r;
  }
  std::vector<char> buf(PATH_MAX + 1);
  ssize_t n = readlink(link.c_str(), buf.data(), buf.size());
  if (n >= 0) r.target.assign(buf.data(), static_cast<size_t>(n));
  struct stat st {};
  if (lstat(link.c_str(), &st) == 0) r.size = st.st_size;
  return r;
}

// Creates dirs[0]/dirs[1]/... under `base` and a file "f" holding `content` at the bottom.
bool make_deep(const std::string& base, const std::vector<std::string>& dirs, const std::string& content) {
  int fd = open(base.c_str(), O_RDONLY | O_DIRECTORY);
  for (const std::string& d : dirs) {
    if (fd < 0 || mkdirat(fd, d.c_str(), 0755) != 0) break;
    int next = openat(fd, d.c_str(), O_RDONLY | O_DIRECTORY);
    close(fd);
    fd = next;
  }
  if (fd < 0) return false;
  int f = openat(fd, "f", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  close(fd);
  if (f < 0) return false;
  bool ok = write(f, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  return close(f) == 0 && ok;
}

class LongSymlinks : public LunfsMount, public ::testing::WithParamInterface<uint32_t> {
 protected:
  void SetUp() override {
    LunfsMount::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (GetParam() != 4096) {  // the fixture formats with mkfs.lunfs's default, 4 KiB
      unmount_fs();
      ASSERT_EQ(run(bin("mkfs.lunfs") + " -q -f -b " + std::to_string(GetParam()) + " -t test:fs -j 2 " + lun_), 0);
      mount_fs(mount_options());
      if (HasFatalFailure()) return;
    }
    struct statvfs s {};
    ASSERT_EQ(statvfs(mnt_.c_str(), &s), 0);
    ASSERT_EQ(s.f_bsize, GetParam());
    char tmpl[] = "/var/tmp/lunfs-symlink-ext4-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    host_ = tmpl;
  }

  void TearDown() override {
    if (!host_.empty()) run("rm -rf " + host_);
    LunfsMount::TearDown();
  }

  uint64_t free_blocks() {
    struct statvfs s {};
    EXPECT_EQ(statvfs(mnt_.c_str(), &s), 0);
    return s.f_bfree;
  }

  std::string host_;  // a directory on the host's ext4
};

TEST_P(LongSymlinks, EveryLengthUpTo4095AsOnExt4) {
  const size_t bs = GetParam();
  // Around the inline maximum (block size - 256), around one block, PATH_MAX - 1 and PATH_MAX.
  std::set<size_t> lengths{1, 255, bs - 257, bs - 256, bs - 255, bs - 1, bs, bs + 1, 4095, 4096};
  std::erase_if(lengths, [](size_t len) { return len > 4096; });
  for (size_t len : lengths) {
    std::string target(len, 'a');
    target[len / 2] = 'm';  // not one repeated byte: a misplaced block shows
    const std::string name = "l" + std::to_string(len);
    LinkResult on_ext4 = make_link(target, host_ + "/" + name);
    LinkResult on_lunfs = make_link(target, path(name));
    EXPECT_EQ(on_lunfs, on_ext4) << name;
    if (len < 4096) {
      EXPECT_EQ(on_lunfs.target, target) << name;
    }
  }
  EXPECT_EQ(make_link(std::string(4096, 'a'), path("too-long")).err, ENAMETOOLONG);

  // The user's view: ln -s of a 4095-byte target, then readlink, as on ext4.
  const std::string ln = "ln -s $(python3 -c 'print(\"a\"*4095)') l && readlink l | wc -c";
  std::string out_ext4 = dir_ + "/ln-ext4.out", out_lunfs = dir_ + "/ln-lunfs.out";
  EXPECT_EQ(run("cd " + mnt_ + " && { " + ln + "; } > " + out_lunfs + " 2>&1"),
            run("cd " + host_ + " && { " + ln + "; } > " + out_ext4 + " 2>&1"));
  EXPECT_EQ(read_file(out_lunfs), read_file(out_ext4));
  EXPECT_EQ(read_file(out_lunfs), "4096\n");  // 4095 bytes and readlink's newline

  // Unmounted and mounted again: the targets come back from disk.
  unmount_fs();
  mount_fs(mount_options());
  ASSERT_FALSE(HasFatalFailure());
  for (size_t len : lengths) {
    if (len == 4096) continue;  // refused above
    std::vector<char> buf(PATH_MAX + 1);
    ssize_t n = readlink(path("l" + std::to_string(len)).c_str(), buf.data(), buf.size());
    ASSERT_EQ(n, static_cast<ssize_t>(len)) << "l" << len << " after remount: " << strerror(errno);
    std::string target(len, 'a');
    target[len / 2] = 'm';
    EXPECT_EQ(std::string(buf.data(), static_cast<size_t>(n)), target) << "l" << len << " after remount";
  }
}

TEST_P(LongSymlinks, LongTargetThroughDeepDirectoriesResolves) {
  // 20 directories of 200-byte names and the file: a 4,021-byte relative target, in data
  // blocks at both block sizes.
  std::vector<std::string> dirs;
  std::string target;
  for (int i = 0; i < 20; ++i) {
    dirs.push_back(std::string(197, 'd') + std::to_string(100 + i));
    target += dirs.back() + "/";
  }
  target += "f";
  ASSERT_GT(target.size(), 3841u);
  for (const std::string& base : {host_, mnt_}) {
    ASSERT_TRUE(make_deep(base, dirs, "bottom of the tree")) << base;
    ASSERT_EQ(symlink(target.c_str(), (base + "/deep").c_str()), 0) << base << ": " << strerror(errno);
    EXPECT_EQ(read_file(base + "/deep"), "bottom of the tree") << base;
  }
  struct stat via_link {}, direct {};
  ASSERT_EQ(stat(path("deep").c_str(), &via_link), 0);
  ASSERT_EQ(lstat(path("deep").c_str(), &direct), 0);
  EXPECT_TRUE(S_ISREG(via_link.st_mode));
  EXPECT_TRUE(S_ISLNK(direct.st_mode));
  EXPECT_EQ(direct.st_size, static_cast<off_t>(target.size()));

  unmount_fs();
  mount_fs(mount_options());
  ASSERT_FALSE(HasFatalFailure());
  EXPECT_EQ(read_file(path("deep")), "bottom of the tree") << "after remount";
}

TEST_P(LongSymlinks, UnlinkGivesTheTargetBlocksBack) {
  const uint64_t bs = GetParam();
  const uint64_t before = free_blocks();
  constexpr int kLinks = 8;
  for (int i = 0; i < kLinks; ++i) {
    ASSERT_EQ(symlink(std::string(4095, static_cast<char>('a' + i)).c_str(), path("s" + std::to_string(i)).c_str()), 0)
        << strerror(errno);
  }
  // Each link: its inode block and ceil(4095 / block size) target blocks.
  EXPECT_EQ(before - free_blocks(), kLinks * (1 + (4095 + bs - 1) / bs));
  for (int i = 0; i < kLinks; ++i) ASSERT_EQ(unlink(path("s" + std::to_string(i)).c_str()), 0) << strerror(errno);
  // The daemon frees an unlinked inode when the kernel forgets it, asynchronously.
  uint64_t now = free_blocks();
  for (int i = 0; i < 200 && now != before; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    now = free_blocks();
  }
  EXPECT_EQ(now, before);
}

INSTANTIATE_TEST_SUITE_P(BlockSizes, LongSymlinks, ::testing::Values(4096u, 1024u),
                         [](const auto& info) { return std::to_string(info.param); });

}  // namespace
}  // namespace lunfs::testing

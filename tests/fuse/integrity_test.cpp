// Through a real mount: what a damaged block does to the user (EIO for the object whose
// block fails its checksum, withdraw to read-only when a shared structure is damaged, a
// log line naming the block, never a crash) and the atime policy (relatime by default,
// noatime on request), both as a user sees them with stat(2).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include "fs/format/superblock.h"
#include "tests/fuse/mount_fixture.h"

namespace lunfs::testing {
namespace {

constexpr uint64_t kSuperblockOffset = 64 * 1024;

// Reads the first block of `p` with O_DIRECT, so the daemon serves it (no page cache).
bool read_direct(const std::string& p) {
  int fd = open(p.c_str(), O_RDONLY | O_DIRECT);
  if (fd < 0) return false;
  void* buf = nullptr;
  if (posix_memalign(&buf, 4096, 4096) != 0) {
    close(fd);
    return false;
  }
  bool ok = pread(fd, buf, 4096, 0) > 0;
  free(buf);
  close(fd);
  return ok;
}

struct timespec atime_of(const std::string& p) {
  struct stat st {};
  EXPECT_EQ(stat(p.c_str(), &st), 0) << p << ": " << std::strerror(errno);
  return st.st_atim;
}

bool same_time(const struct timespec& a, const struct timespec& b) {
  return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

class Damage : public LunfsMount {
 protected:
  ondisk::Superblock superblock() {
    std::string img(4096, '\0');
    int fd = open(lun_.c_str(), O_RDONLY);
    EXPECT_EQ(pread(fd, img.data(), img.size(), kSuperblockOffset), 4096);
    close(fd);
    auto sb = ondisk::decode_superblock(std::as_bytes(std::span(img)), kSuperblockOffset / 4096);
    EXPECT_TRUE(sb) << sb.status().to_string();
    EXPECT_EQ(sb->geometry.block_size, 4096u);
    return *sb;
  }

  // Flips bytes inside block `blocknr` of the unmounted LUN file, past its header, so the
  // block's checksum no longer matches.
  void corrupt_block(uint64_t blocknr) {
    int fd = open(lun_.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    const char junk[16] = {'d', 'a', 'm', 'a', 'g', 'e', 'd', '!', 1, 2, 3, 4, 5, 6, 7, 8};
    ASSERT_EQ(pwrite(fd, junk, sizeof junk, static_cast<off_t>(blocknr * 4096 + 200)), 16);
    close(fd);
  }

  // fsck.lunfs -n must find the damage (exit 4: errors left uncorrected) and name the block.
  void expect_fsck_reports(uint64_t blocknr) {
    check_fsck_ = false;
    unmount_fs();
    std::string out_file = dir_ + "/fsck-damage.out";
    int rc = run(bin("fsck.lunfs") + " -n " + lun_ + " > " + out_file + " 2>&1");
    std::string out = read_file(out_file);
    EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 4) << "fsck exit " << rc << "\n" << out;
    EXPECT_NE(out.find(std::to_string(blocknr)), std::string::npos) << out;
  }
};

TEST_F(Damage, CorruptInodeGivesEioForThatFileOnlyAndLogsTheBlock) {
  ASSERT_TRUE(write_file(path("victim"), std::string(10000, 'v')));
  ASSERT_TRUE(write_file(path("bystander"), std::string(10000, 'b')));
  struct stat st {};
  ASSERT_EQ(stat(path("victim").c_str(), &st), 0);
  const uint64_t victim_block = st.st_ino;  // the inode number is its block address
  unmount_fs();
  corrupt_block(victim_block);
  mount_fs(mount_options());

  errno = 0;
  EXPECT_EQ(stat(path("victim").c_str(), &st), -1);
  EXPECT_EQ(errno, EIO);
  errno = 0;
  EXPECT_EQ(open(path("victim").c_str(), O_RDONLY), -1);
  EXPECT_EQ(errno, EIO);
  // The damage is the file's own: everything else keeps working, writes included.
  EXPECT_EQ(read_file(path("bystander")), std::string(10000, 'b'));
  EXPECT_TRUE(write_file(path("new"), "still writable"));
  EXPECT_EQ(read_file(path("new")), "still writable");
  std::string log = daemon_log();
  EXPECT_NE(log.find(std::to_string(victim_block)), std::string::npos) << "the log must name the block:\n" << log;
  EXPECT_EQ(log.find("withdraw"), std::string::npos) << log;
  expect_fsck_reports(victim_block);
}

TEST_F(Damage, CorruptResourceGroupWithdrawsTheMountToReadOnly) {
  ASSERT_TRUE(write_file(path("keep"), std::string(50000, 'k')));
  ASSERT_EQ(mkdir(path("dir").c_str(), 0755), 0);
  unmount_fs();
  const uint64_t header = superblock().geometry.rgrp(0).header;
  corrupt_block(header);
  mount_fs(mount_options());

  // What is there stays readable ...
  EXPECT_EQ(read_file(path("keep")), std::string(50000, 'k'));
  struct stat st {};
  EXPECT_EQ(stat(path("dir").c_str(), &st), 0);
  // ... and nothing more is written: every change fails with EROFS.
  errno = 0;
  EXPECT_EQ(open(path("new").c_str(), O_WRONLY | O_CREAT, 0644), -1);
  EXPECT_EQ(errno, EROFS);
  errno = 0;
  EXPECT_EQ(mkdir(path("dir2").c_str(), 0755), -1);
  EXPECT_EQ(errno, EROFS);
  errno = 0;
  EXPECT_EQ(unlink(path("keep").c_str()), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(read_file(path("keep")), std::string(50000, 'k'));
  std::string log = daemon_log();
  EXPECT_NE(log.find("withdraw"), std::string::npos) << log;
  EXPECT_NE(log.find("resource group 0"), std::string::npos) << log;
  expect_fsck_reports(header);
}

class Atime : public LunfsMount {
 protected:
  // A file whose atime is far older than its mtime and ctime.
  void make_file_with_old_atime(const std::string& name) {
    ASSERT_TRUE(write_file(path(name), std::string(8192, 'a')));
    struct timespec times[2] = {{1000000000, 5}, {0, UTIME_NOW}};
    ASSERT_EQ(utimensat(AT_FDCWD, path(name).c_str(), times, 0), 0);
    ASSERT_TRUE(same_time(atime_of(path(name)), times[0]));
  }
};

TEST_F(Atime, RelatimeByDefaultUpdatesAnOldAtimeOnceAndKeepsIt) {
  make_file_with_old_atime("f");
  ASSERT_TRUE(read_direct(path("f")));
  struct timespec first = atime_of(path("f"));
  struct stat st {};
  ASSERT_EQ(stat(path("f").c_str(), &st), 0);
  EXPECT_GT(first.tv_sec, 1000000000) << "a read must update an atime older than mtime";
  EXPECT_GE(first.tv_sec, st.st_mtim.tv_sec);
  // relatime: atime is now newer than mtime and ctime and less than a day old, so a
  // second read leaves it exactly as it is (strictatime would move it, nanoseconds on).
  ASSERT_TRUE(read_direct(path("f")));
  EXPECT_TRUE(same_time(atime_of(path("f")), first));
  // The updated atime is on disk after a remount.
  unmount_fs();
  mount_fs(mount_options());
  EXPECT_TRUE(same_time(atime_of(path("f")), first));
}

class NoatimeMount : public Atime {
 protected:
  std::string mount_options() const override { return "lockproto=nolock,noatime"; }
};

TEST_F(NoatimeMount, ReadsNeverChangeAtime) {
  make_file_with_old_atime("f");
  ASSERT_TRUE(read_direct(path("f")));
  EXPECT_EQ(read_file(path("f")), std::string(8192, 'a'));
  EXPECT_TRUE(same_time(atime_of(path("f")), (struct timespec){1000000000, 5}));
  unmount_fs();
  mount_fs(mount_options());
  EXPECT_TRUE(same_time(atime_of(path("f")), (struct timespec){1000000000, 5}));
}

}  // namespace
}  // namespace lunfs::testing

// A lunfs mounted through mount.lunfs for a test: a LUN file in a fresh temporary
// directory, mkfs.lunfs, mount.lunfs -f as a child process, and on teardown unmount
// (fusermount3 -u, then umount -l), wait for that daemon (killing only its pid when it
// does not exit) and fsck.lunfs -n, whose verdict the test checks. Skips without root
// or /dev/fuse. LUNFS_KEEP_TEST_DIR=1 keeps the temporary directory (LUN, daemon log) for a
// look after a failure.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

namespace lunfs::testing {

inline int run(const std::string& cmd) { return std::system(cmd.c_str()); }

// The whole content of `p`, or "<open failed: ...>" so that a comparison names the cause.
inline std::string read_file(const std::string& p) {
  int fd = open(p.c_str(), O_RDONLY);
  if (fd < 0) return "<open failed: " + std::string(std::strerror(errno)) + ">";
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

// Writes `data` to `p` opened with `flags`; false on any error.
inline bool write_file(const std::string& p, const std::string& data, int flags = O_WRONLY | O_CREAT | O_TRUNC) {
  int fd = open(p.c_str(), flags, 0644);
  if (fd < 0) return false;
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  return close(fd) == 0 && ok;
}

// Replaces `p` with `data` and fsyncs it: acknowledged durable when it returns true.
inline bool write_synced(const std::string& p, const std::string& data) {
  int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return false;
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) && fsync(fd) == 0;
  return close(fd) == 0 && ok;
}

inline bool fsync_dir(const std::string& p) {
  int fd = open(p.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return false;
  bool ok = fsync(fd) == 0;
  close(fd);
  return ok;
}

inline bool is_mounted(const std::string& dir) {
  std::ifstream m("/proc/self/mounts");
  std::string dev, mp, rest;
  while (m >> dev >> mp && std::getline(m, rest)) {
    if (mp == dir) return true;
  }
  return false;
}

// Runs `fn` in a child as uid/gid 65534 (nobody); returns its exit code (0 = success; the
// tests return an errno), 200 when the child could not drop its privileges.
inline int as_nobody(const std::function<int()>& fn) {
  pid_t p = fork();
  if (p == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(200);
    _exit(fn());
  }
  int status = 0;
  waitpid(p, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
}

class LunfsMount : public ::testing::Test {
 public:
  static std::string bin(const std::string& name) { return std::string(LUNFS_BIN_DIR) + "/" + name; }

 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "FUSE mount tests need root";
    if (access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "FUSE mount tests need /dev/fuse";
    char tmpl[] = "/tmp/lunfs-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);
    lun_ = dir_ + "/lun.img";
    mnt_ = dir_ + "/mnt";
    ASSERT_EQ(mkdir(mnt_.c_str(), 0755), 0);
    ASSERT_EQ(run("truncate -s " + std::to_string(lun_mib()) + "M " + lun_), 0);
    ASSERT_EQ(run(bin("mkfs.lunfs") + " -q -t test:fs -j 2 " + lun_), 0);
    mount_fs(mount_options());
  }

  void TearDown() override {
    if (dir_.empty()) return;
    unmount_fs();
    if (check_fsck_) {
      int rc = run(bin("fsck.lunfs") + " -n " + lun_ + " > " + dir_ + "/fsck.out 2>&1");
      std::ifstream f(dir_ + "/fsck.out");
      std::string out((std::istreambuf_iterator<char>(f)), {});
      EXPECT_EQ(rc, 0) << "fsck.lunfs after unmount:\n" << out;
    }
    if (!getenv("LUNFS_KEEP_TEST_DIR")) run("rm -rf " + dir_);
  }

  virtual uint64_t lun_mib() const { return 1024; }
  virtual std::string mount_options() const { return "lockproto=nolock"; }

  void mount_fs(const std::string& options) {
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      std::string b = bin("mount.lunfs");
      int null = open((dir_ + "/daemon.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (null >= 0) {
        dup2(null, 1);
        dup2(null, 2);
      }
      execl(b.c_str(), "mount.lunfs", lun_.c_str(), mnt_.c_str(), "-f", "-o", options.c_str(), nullptr);
      _exit(127);
    }
    // 30 s: a mount after a killed daemon first waits out its heartbeat (two heartbeat
    // intervals and a second; tests that kill use heartbeat=1).
    for (int i = 0; i < 1200 && !is_mounted(mnt_); ++i) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        FAIL() << "mount.lunfs exited before mounting: " << daemon_log();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ASSERT_TRUE(is_mounted(mnt_)) << "mount.lunfs did not mount within 30 s: " << daemon_log();
  }

  void unmount_fs() {
    if (is_mounted(mnt_) && run("fusermount3 -u " + mnt_ + " 2>/dev/null") != 0) run("umount -l " + mnt_);
    if (pid_ > 0) {
      int status = 0;
      bool exited = false;
      // The kernel forgets every inode at unmount; freeing thousands of unlinked ones
      // takes a while under the sanitizers. Only a daemon that hangs is killed.
      for (int i = 0; i < 2400 && !exited; ++i) {
        exited = waitpid(pid_, &status, WNOHANG) == pid_;
        if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(25));
      }
      if (!exited) {
        ADD_FAILURE() << "mount.lunfs did not exit after unmount; killing pid " << pid_;
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
      } else {
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "mount.lunfs exit status " << status
                                                                   << ": " << daemon_log();
      }
      pid_ = -1;
    }
  }

  // SIGKILLs the daemon this test started (by pid) and drops its dead mount.
  void kill_daemon() {
    ASSERT_GT(pid_, 0);
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    if (is_mounted(mnt_) && run("fusermount3 -u -z " + mnt_ + " 2>/dev/null") != 0) run("umount -l " + mnt_);
    ASSERT_FALSE(is_mounted(mnt_));
  }

  std::string daemon_log() {
    std::ifstream f(dir_ + "/daemon.log");
    return std::string((std::istreambuf_iterator<char>(f)), {});
  }

  std::string path(const std::string& rel) const { return mnt_ + "/" + rel; }

  std::string dir_, lun_, mnt_;
  pid_t pid_ = -1;
  bool check_fsck_ = true;
};

}  // namespace lunfs::testing

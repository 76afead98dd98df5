// The journal's commit timer through a real mount (mount option commit=), and fsck.lunfs
// on a LUN whose daemon was SIGKILLed: work nobody fsynced is durable after `commit=`
// seconds and not before; fsck refuses a mounted LUN and replays a dead daemon's journal.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "tests/fuse/mount_fixture.h"

namespace lunfs::testing {
namespace {

const std::string kData(20000, 'v');  // several blocks: an allocating write

std::string first_line(const std::string& p) {
  std::string s = read_file(p);
  return s.substr(0, s.find('\n'));
}

// Creates `p` holding kData, without fsync.
void write_unsynced(const std::string& p) {
  int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << p;
  ASSERT_EQ(write(fd, kData.data(), kData.size()), static_cast<ssize_t>(kData.size()));
  ASSERT_EQ(close(fd), 0);
}

class CommitMount : public LunfsMount {
 protected:
  uint64_t lun_mib() const override { return 256; }

  int fsck(const std::string& args, std::string* out) {
    const std::string log = dir_ + "/fsck.log";
    int rc = run(bin("fsck.lunfs") + " " + args + " " + lun_ + " > " + log + " 2>&1");
    *out = read_file(log);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }

  std::string md5() {
    const std::string log = dir_ + "/md5";
    EXPECT_EQ(run("md5sum " + lun_ + " > " + log), 0);
    return read_file(log).substr(0, 32);
  }
};

class CommitEverySecond : public CommitMount {
 protected:
  std::string mount_options() const override { return "lockproto=nolock,commit=1,heartbeat=1"; }
};

class CommitHourly : public CommitMount {
 protected:
  // heartbeat=1: a remount or fsck after a kill waits out the heartbeat (3 s, not 11).
  std::string mount_options() const override { return "lockproto=nolock,commit=3600,heartbeat=1"; }
};

TEST_F(CommitEverySecond, UnsyncedFileSurvivesSigkillAfterTheInterval) {
  ASSERT_EQ(mkdir(path("dir").c_str(), 0755), 0);
  write_unsynced(path("dir/file"));
  std::this_thread::sleep_for(std::chrono::seconds(3));  // three timer commits
  kill_daemon();
  mount_fs(mount_options());  // replays the journal
  EXPECT_EQ(read_file(path("dir/file")), kData) << "the timer should have committed it";
}

// The same without -f: mount.lunfs forks into the background before it starts any thread,
// so the daemon that serves the mount has the commit timer (it once started in the parent
// and did not survive fuse_daemonize's fork: the file was lost).
TEST_F(CommitEverySecond, BackgroundDaemonCommitsToo) {
  unmount_fs();
  ASSERT_EQ(run(bin("mount.lunfs") + " " + lun_ + " " + mnt_ + " -o " + mount_options() + " > " + dir_ +
                "/background.log 2>&1"),
            0)
      << read_file(dir_ + "/background.log");
  // The daemon this test started, found by the LUN path that only this test uses.
  const std::string pids = dir_ + "/daemon.pid";
  ASSERT_EQ(run("pgrep -f '^" + bin("mount.lunfs") + " " + lun_ + " ' > " + pids), 0);
  const pid_t daemon = static_cast<pid_t>(std::stol(read_file(pids)));
  struct Reaper {  // also when an assertion below fails
    pid_t pid;
    std::string mnt;
    ~Reaper() {
      if (pid > 0) kill(pid, SIGKILL);
      run("umount -l " + mnt + " 2>/dev/null");
    }
  } reaper{daemon, mnt_};
  ASSERT_TRUE(is_mounted(mnt_));
  ASSERT_EQ(mkdir(path("dir").c_str(), 0755), 0);
  write_unsynced(path("dir/file"));
  std::this_thread::sleep_for(std::chrono::seconds(3));  // three timer commits
  ASSERT_EQ(kill(daemon, SIGKILL), 0);
  for (int i = 0; i < 200 && kill(daemon, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  reaper.pid = -1;
  ASSERT_EQ(run("umount -l " + mnt_), 0);
  mount_fs(mount_options());  // replays the journal
  EXPECT_EQ(read_file(path("dir/file")), kData) << "the background daemon's timer should have committed it";
}

// The same workload with a long interval: lost, so it was the timer above, not the
// unmount path or anything else, that made the file durable.
TEST_F(CommitHourly, UnsyncedFileIsLostOnSigkillBeforeTheInterval) {
  ASSERT_EQ(mkdir(path("dir").c_str(), 0755), 0);
  write_unsynced(path("dir/file"));
  std::this_thread::sleep_for(std::chrono::seconds(3));
  kill_daemon();
  mount_fs(mount_options());
  EXPECT_NE(access(path("dir").c_str(), F_OK), 0) << "nothing committed it, yet it survived";
}

TEST_F(CommitHourly, FsckRefusesAMountedLun) {
  ASSERT_TRUE(write_synced(path("file"), kData));
  std::string out;
  EXPECT_EQ(fsck("-n", &out), 8) << out;
  EXPECT_NE(out.find("is in use on this host by mount.lunfs (pid " + std::to_string(pid_) + ", slot 0) mounted on " +
                     mnt_),
            std::string::npos)
      << out;
  EXPECT_EQ(fsck("--all-nodes-unmounted", &out), 8) << out;
  EXPECT_EQ(read_file(path("file")), kData);
}

TEST_F(CommitHourly, FsckReplaysTheJournalOfAKilledDaemon) {
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(write_synced(path("acked" + std::to_string(i)), kData));
  write_unsynced(path("unsynced"));
  kill_daemon();
  const std::string before = md5();
  std::string out;
  EXPECT_EQ(fsck("-n", &out), 0) << out;
  EXPECT_NE(out.find("warning: slot 0: journal needs replay"), std::string::npos) << out;
  EXPECT_NE(out.find("slot 0: heartbeat of host "), std::string::npos) << out;
  EXPECT_NE(out.find("a mount that crashed"), std::string::npos) << out;
  EXPECT_NE(out.find("5 inodes (1 directories)"), std::string::npos) << out;  // root + 4 acknowledged
  EXPECT_EQ(md5(), before) << "fsck -n wrote to the LUN";
  EXPECT_EQ(fsck("--all-nodes-unmounted", &out), 1) << out;
  EXPECT_NE(out.find("slot 0: replayed"), std::string::npos) << out;
  EXPECT_NE(out.find("s: marked clean"), std::string::npos) << out;
  EXPECT_EQ(fsck("-n", &out), 0) << out;
  EXPECT_NE(out.find("0 error(s), 0 warning(s)"), std::string::npos) << out;
  mount_fs(mount_options());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(read_file(path("acked" + std::to_string(i))), kData) << i;
  EXPECT_NE(access(path("unsynced").c_str(), F_OK), 0);
}

// The lock works both ways: while fsck holds the device (here: the test takes fsck's
// exclusive lock), mount.lunfs refuses to start, naming the holder.
TEST_F(CommitHourly, MountRefusesWhileFsckHoldsTheDevice) {
  unmount_fs();
  int fd = open(lun_.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX), 0);
  const std::string log = dir_ + "/refused.log";
  int rc = run(bin("mount.lunfs") + " " + lun_ + " " + mnt_ + " -f -o lockproto=nolock > " + log + " 2>&1");
  close(fd);
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 32) << rc;
  EXPECT_NE(read_file(log).find("is in use on this host by " + first_line("/proc/self/comm") + " (pid " +
                                std::to_string(getpid()) + ")"),
            std::string::npos)
      << read_file(log);
  EXPECT_FALSE(is_mounted(mnt_));
  mount_fs(mount_options());  // and mounts once fsck is done
}

}  // namespace
}  // namespace lunfs::testing

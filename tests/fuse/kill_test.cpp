// Process-level crash test: the mounted daemon is SIGKILLed in the middle of a workload,
// the file system is mounted again (which replays the slot's journal), and everything an
// fsync acknowledged before the kill must be there, intact; fsck.lunfs -n must be clean
// after the final unmount (mount_fixture.h).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "tests/fuse/mount_fixture.h"

namespace lunfs::testing {
namespace {

std::string content(int round, int file, size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + (round * 7 + file * 3 + i / 512) % 26);
  return s;
}

// heartbeat=1: each remount waits out the killed daemon's heartbeat (3 s, not 11).
class KillDaemon : public LunfsMount {
 protected:
  std::string mount_options() const override { return "lockproto=nolock,heartbeat=1"; }
};

TEST_F(KillDaemon, FsyncedWorkSurvivesSigkillAndReplay) {
  constexpr int kRounds = 3, kFiles = 12;
  for (int round = 0; round < kRounds; ++round) {
    const std::string d = path("round" + std::to_string(round));
    ASSERT_EQ(mkdir(d.c_str(), 0755), 0);
    for (int f = 0; f < kFiles; ++f) {
      ASSERT_TRUE(write_synced(d + "/file" + std::to_string(f), content(round, f, 1000 + f * 20000)));
    }
    // The classic pattern: write a temporary file, fsync it, rename it over the old one,
    // fsync the directory.
    ASSERT_TRUE(write_synced(path("config.tmp"), content(round, 99, 3000)));
    ASSERT_EQ(rename(path("config.tmp").c_str(), path("config").c_str()), 0);
    ASSERT_TRUE(fsync_dir(d));
    ASSERT_TRUE(fsync_dir(mnt_));
    // Acknowledged removals: the previous round's first file goes.
    if (round > 0) {
      ASSERT_EQ(unlink((path("round" + std::to_string(round - 1)) + "/file0").c_str()), 0);
      ASSERT_TRUE(fsync_dir(path("round" + std::to_string(round - 1))));
    }
    // Work in flight that nobody waited for: it may or may not survive, but must not
    // damage anything.
    for (int f = 0; f < 20; ++f) {
      int fd = open((d + "/unsynced" + std::to_string(f)).c_str(), O_WRONLY | O_CREAT, 0644);
      ASSERT_GE(fd, 0);
      std::string data = content(round, f + 50, 70000);
      ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
      close(fd);
    }
    kill_daemon();
    mount_fs(mount_options());

    for (int r = 0; r <= round; ++r) {
      const std::string rd = path("round" + std::to_string(r));
      for (int f = 0; f < kFiles; ++f) {
        const std::string p = rd + "/file" + std::to_string(f);
        bool removed = f == 0 && r < round;
        if (removed) {
          EXPECT_NE(access(p.c_str(), F_OK), 0) << p << " was unlinked and fsynced before the kill";
        } else {
          EXPECT_EQ(read_file(p), content(r, f, 1000 + f * 20000)) << p << " after kill #" << round + 1;
        }
      }
    }
    EXPECT_EQ(read_file(path("config")), content(round, 99, 3000));
    EXPECT_NE(access(path("config.tmp").c_str(), F_OK), 0);
  }
}

}  // namespace
}  // namespace lunfs::testing

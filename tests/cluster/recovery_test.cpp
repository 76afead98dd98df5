// Node failure and recovery (issue 13) on real Corosync: a node killed while it writes is
// recovered by a survivor — its journal replayed once its disk lease has run out, its locks
// released — and the survivors go on, with every byte it fsync'd; a node whose corosync
// dies fences itself (nothing it writes reaches the LUN any more) and is recovered the same
// way, and so is a node cut off the network (inquorate), which stays fenced after the heal;
// the dead node's slot is mounted again at once; fsck is clean at the end.
// The fixture: cluster_mount_fixture.h (nodes 1 and 2 mounted by the suite).
#include <signal.h>
#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "tests/cluster/cluster_mount_fixture.h"

namespace lunfs::testing {
namespace {

class ClusterRecovery : public ClusterMountSuite {
 protected:
  // Nodes 1 and 2 mount with a log file each: the recoverer says what it did there.
  static void SetUpTestSuite() {
    set_up_cluster("rc", 0);
    if (!skip_.empty() || !setup_error_.empty()) return;
    for (int n = 1; n <= 2; ++n) {
      Output r = mount(n, "");
      if (r.status != 0) setup_error_ = "mount on node " + std::to_string(n) + ": " + r.text;
    }
  }

  // Writes `data` to `path` (created) and fsyncs it; false on any error.
  static bool write_synced(const std::string& path, const std::string& data) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return false;
    bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) && fsync(fd) == 0;
    return close(fd) == 0 && ok;
  }

  // Node 2 makes DIR and DIR/own holding `data`, fsync'd, and keeps it open for writing:
  // the descriptor, or -1 (errno says why).
  static int open_synced_file_of_node_2(const std::string& dir, const std::string& data) {
    if (mkdir(at(2, dir).c_str(), 0755) != 0 || !write_synced(at(2, dir + "/own"), data)) return -1;
    return open(at(2, dir + "/own").c_str(), O_WRONLY);
  }

  // Seconds until `cmd` (run on the host against a node's view) succeeds, or -1 when it has
  // not within `limit` seconds. Each try runs under `timeout -s KILL`, so a request stuck
  // behind a lock that nobody releases fails the test instead of hanging it.
  static double seconds_until_ok(const std::string& cmd, int limit) {
    const auto start = std::chrono::steady_clock::now();
    const std::string bounded = "timeout -s KILL " + std::to_string(limit) + " " + cmd;
    Output r = sh(bounded);
    if (r.status != 0) return -1;
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

TEST_F(ClusterRecovery, NodeKilledWhileWritingIsRecoveredAndTheOthersGoOnWithEverythingItSynced) {
  ASSERT_EQ(mkdir(at(2, "d").c_str(), 0755), 0) << strerror(errno);
  const std::string image = random_bytes((4 << 20) + 4321, 7);
  ASSERT_TRUE(write_synced(at(2, "d/synced"), image));
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(write_synced(at(2, "d/f" + std::to_string(i)), "file " + std::to_string(i) + "\n")) << i;
  }
  // A file node 2 has open after its last unlink: its blocks are the dead node's to free,
  // so after the recovery node 1 frees them. The fsync of another file commits the unlink.
  ASSERT_TRUE(write_synced(at(2, "d/orphan"), std::string(1 << 20, 'o')));
  const int orphan_fd = open(at(2, "d/orphan").c_str(), O_RDONLY);
  ASSERT_GE(orphan_fd, 0) << strerror(errno);
  ASSERT_EQ(unlink(at(2, "d/orphan").c_str()), 0) << strerror(errno);
  ASSERT_TRUE(write_synced(at(2, "d/commit"), "commits the unlink\n"));

  // Node 2 keeps creating, writing and renaming in d (its locks on d and on the files stay
  // held, and its journal has work in it) until it dies.
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::thread writer([&] {
    const std::string chunk = random_bytes(64 << 10, 9);
    for (int i = 0; !stop; ++i) {
      const std::string p = at(2, "d/busy" + std::to_string(i % 8));
      int fd = open(p.c_str(), O_WRONLY | O_CREAT, 0644);
      if (fd < 0) break;
      bool ok = pwrite(fd, chunk.data(), chunk.size(), (i % 16) * chunk.size()) > 0;
      close(fd);
      if (!ok || rename(p.c_str(), at(2, "d/moved" + std::to_string(i % 8)).c_str()) != 0) break;
      written = i + 1;
    }
  });
  while (written < 20) std::this_thread::sleep_for(std::chrono::milliseconds(10));

  const auto killed = std::chrono::steady_clock::now();
  Output kill = sh(kHarness + " kill 2");
  ASSERT_EQ(kill.status, 0) << kill.text;
  stop = true;
  writer.join();  // its next operation fails: the daemon is gone
  close(orphan_fd);

  // Node 1 lists d (node 2 held it exclusively) and reads the image, within a minute.
  const double resumed = seconds_until_ok("ls -l " + at(1, "d") + " > /dev/null", 60);
  const double since_kill = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  ASSERT_GE(resumed, 0) << "node 1 could not list the dead node's directory within 60 s";
  RecordProperty("seconds_from_kill_to_io_on_node_1", std::to_string(since_kill));
  std::printf("node 1 listed the dead node's directory %.2f s after the kill\n", since_kill);
  EXPECT_EQ(read_all(at(1, "d/synced")), image);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(read_all(at(1, "d/f" + std::to_string(i))), "file " + std::to_string(i) + "\n") << i;
  }
  // Node 1, the lowest member, recovered slot 1 and says so in its log, with timestamps.
  const std::string log = read_all(log_of(1));
  EXPECT_NE(log.find("(slot 1) left the lock space holding"), std::string::npos) << log;
  EXPECT_NE(log.find(" s): slot 1: "), std::string::npos) << log;
  EXPECT_NE(log.find("its locks are released"), std::string::npos) << log;
  EXPECT_NE(log.find("Z recovery of node"), std::string::npos) << "lines are timestamped:\n" << log;
  // The orphan is freed right after the recovery, on node 1's thread: wait for its line.
  std::string swept = log;
  for (int i = 0; i < 100 && swept.find("freed 1 files that were unlinked while open") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    swept = read_all(log_of(1));
  }
  EXPECT_NE(swept.find("freed 1 files that were unlinked while open"), std::string::npos) << swept;
  std::printf("node 1's log:\n%s", log.c_str());

  // Node 1 changes what node 2 held: the locks are its own now.
  ASSERT_TRUE(write_synced(at(1, "d/after"), "written by node 1 after the recovery\n"));
  ASSERT_EQ(rename(at(1, "d/f0").c_str(), at(1, "d/f0-renamed").c_str()), 0) << strerror(errno);

  // Node 3 mounts at once, in the slot the dead node had or another, and sees it all.
  Output m = mount(3, "");
  ASSERT_EQ(m.status, 0) << m.text;
  EXPECT_EQ(read_all(at(3, "d/after")), "written by node 1 after the recovery\n");
  EXPECT_EQ(read_all(at(3, "d/synced")), image);
}

// Only the mount daemon dies (SIGKILL); node 2's corosync lives on and reports it gone at
// once, so node 1 waits out its lease, which the daemon no longer renews.
TEST_F(ClusterRecovery, MountDaemonKilledWhileWritingIsRecovered) {
  Output m = restart_and_mount(2, "");
  ASSERT_EQ(m.status, 0) << m.text;
  ASSERT_EQ(mkdir(at(2, "k").c_str(), 0755), 0) << strerror(errno);
  const std::string image = random_bytes((2 << 20) + 77, 11);
  ASSERT_TRUE(write_synced(at(2, "k/synced"), image));
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    const std::string chunk(32 << 10, 'w');
    for (int i = 0; !stop; ++i) {
      int fd = open(at(2, "k/busy" + std::to_string(i % 4)).c_str(), O_WRONLY | O_CREAT, 0644);
      if (fd < 0) break;
      const bool ok = pwrite(fd, chunk.data(), chunk.size(), (i % 8) * chunk.size()) > 0;
      close(fd);
      if (!ok) break;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // The daemon of node 2: the mount.lunfs whose mount namespace is node 2's.
  char want[64] = {}, ns[64] = {};
  ASSERT_GT(readlink(("/proc/" + std::to_string(anchors_[2]) + "/ns/mnt").c_str(), want, sizeof want - 1), 0);
  pid_t daemon = 0;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      const std::string pid = e->d_name;
      if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
      std::memset(ns, 0, sizeof ns);
      if (read_all("/proc/" + pid + "/comm") == "mount.lunfs\n" &&
          readlink(("/proc/" + pid + "/ns/mnt").c_str(), ns, sizeof ns - 1) > 0 && std::strcmp(ns, want) == 0) {
        daemon = std::stoi(pid);
      }
    }
    closedir(d);
  }
  ASSERT_GT(daemon, 0) << "no mount.lunfs in node 2";
  ASSERT_EQ(kill(daemon, SIGKILL), 0) << strerror(errno);
  stop = true;
  writer.join();

  Output ls = sh("timeout -s KILL 60 ls -l " + at(1, "k") + " > /dev/null");
  ASSERT_EQ(ls.status, 0) << "node 1 could not list the killed daemon's directory within 60 s: " << ls.text;
  EXPECT_EQ(read_all(at(1, "k/synced")), image);
  EXPECT_EQ(read_all(at(3, "k/synced")), image);
}

TEST_F(ClusterRecovery, NodeWhoseCorosyncDiesStopsWritingAndIsRecovered) {
  Output m = restart_and_mount(2, "");
  ASSERT_EQ(m.status, 0) << m.text;
  const std::string before(1 << 20, 'b');
  const int fd = open_synced_file_of_node_2("e", before);
  ASSERT_GE(fd, 0) << strerror(errno);

  Output stop = sh(kHarness + " stop-corosync 2");
  ASSERT_EQ(stop.status, 0) << stop.text;
  // Node 2 still caches its locks on e/own, but it has no lock space any more: it must not
  // write the LUN, since the others are about to recover its journal and reuse its locks.
  const double resumed = seconds_until_ok("stat " + at(1, "e/own") + " > /dev/null", 60);
  ASSERT_GE(resumed, 0) << "node 1 could not reach node 2's file within 60 s";
  const std::string after(4096, 'X');
  const ssize_t late = pwrite(fd, after.data(), after.size(), 0);
  const int late_errno = errno;
  const int synced = fsync(fd);
  close(fd);
  EXPECT_TRUE(late < 0 || synced != 0) << "a node without a lock space wrote and synced after it was recovered";
  if (late < 0) {
    EXPECT_TRUE(late_errno == EROFS || late_errno == EIO || late_errno == ENOTCONN) << strerror(late_errno);
  }
  EXPECT_EQ(read_all(at(1, "e/own")), before) << "node 2's late write reached the LUN";
  EXPECT_EQ(read_all(at(3, "e/own")), before);
  ASSERT_TRUE(write_synced(at(3, "e/new"), "node 3\n"));
}

TEST_F(ClusterRecovery, PartitionedNodeStopsWritingIsRecoveredAndStaysWithdrawnAfterTheHeal) {
  Output m = restart_and_mount(2, "");
  ASSERT_EQ(m.status, 0) << m.text;
  const std::string before(256 << 10, 'p');
  const int fd = open_synced_file_of_node_2("p", before);
  ASSERT_GE(fd, 0) << strerror(errno);

  Output cut = sh(kHarness + " partition 2");
  ASSERT_EQ(cut.status, 0) << cut.text;
  // Node 2 renews its heartbeat until it notices it lost quorum, about when the others
  // notice it gone; then they wait out its lease: meanwhile `lunfs status` on node 1 shows
  // the recovery in progress, and the members left.
  std::string during, last;
  for (int i = 0; i < 50; ++i) {
    Output st = sh(kHarness + " exec 1 " + kBin + "/lunfs status " + mnt_);
    last = st.text;
    if (st.text.find(" left ") != std::string::npos && st.text.find("disk lease") != std::string::npos) {
      during = st.text;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(during.find("Recovery: \n  node "), std::string::npos) << "no recovery shown by lunfs status:\n" << last;
  EXPECT_NE(during.find("Cluster members (node ids): "), std::string::npos) << during;
  const double resumed = seconds_until_ok("stat " + at(1, "p/own") + " > /dev/null", 60);
  if (resumed < 0) sh(kHarness + " heal 2");
  ASSERT_GE(resumed, 0) << "nodes 1 and 3 could not reach the partitioned node's file within 60 s";
  const std::string late(4096, 'L');
  const bool wrote = pwrite(fd, late.data(), late.size(), 0) == static_cast<ssize_t>(late.size()) && fsync(fd) == 0;
  EXPECT_FALSE(wrote) << "the partitioned node wrote and synced after the majority recovered it";
  EXPECT_EQ(read_all(at(1, "p/own")), before) << "the partitioned node's late write reached the LUN";

  // Healed, it does not resume: its mount stays withdrawn until the admin mounts again.
  Output heal = sh(kHarness + " heal 2");
  ASSERT_EQ(heal.status, 0) << heal.text;
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const bool wrote_after_heal = pwrite(fd, late.data(), late.size(), 0) == static_cast<ssize_t>(late.size()) && fsync(fd) == 0;
  close(fd);
  EXPECT_FALSE(wrote_after_heal) << "the healed node wrote again without being mounted anew";
  EXPECT_EQ(read_all(at(3, "p/own")), before);
}

TEST_F(ClusterRecovery, FsckIsCleanAfterTheSurvivorsUnmount) {
  for (int n : {1, 3}) {
    Output r = sh(kHarness + " exec " + std::to_string(n) + " umount " + mnt_);
    EXPECT_EQ(r.status, 0) << "node " << n << ": " << r.text;
  }
  // Node 2's fenced daemon: unmounted (it cannot write anything any more), or killed.
  sh(kHarness + " exec 2 umount -l " + mnt_);
  sh(kHarness + " kill 2");
  Output r = fsck_after_daemons_finish();
  EXPECT_EQ(r.status, 0) << r.text;
  EXPECT_EQ(r.text.find("unlinked while open"), std::string::npos) << "the dead node's orphan was not freed:\n" << r.text;
}

}  // namespace
}  // namespace lunfs::testing

// Node failure and recovery (issue 13) on real Corosync: a node killed while it writes is
// recovered by a survivor — its journal replayed once its disk lease has run out, its locks
// released — and the survivors go on, with every byte it fsync'd; a node whose corosync
// dies fences itself (nothing it writes reaches the LUN any more) and is recovered the same
// way, and so is a node cut off the network (inquorate), which stays fenced after the heal;
// the dead node's slot is mounted again at once; fsck is clean at the end.
// The fixture: cluster_mount_fixture.h (nodes 1 and 2 mounted by the suite).
#include <signal.h>
#include <sys/uio.h>

#include <algorithm>
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
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) && fsync(fd) == 0;
    return close(fd) == 0 && ok;
  }

  // Node 2 makes DIR and DIR/own holding `data`, fsync'd, and keeps it open for writing:
  // the descriptor, or -1 (errno says why).
  static int open_synced_file_of_node_2(const std::string& dir, const std::string& data) {
    if (mkdir(at(2, dir).c_str(), 0755) != 0 || !write_synced(at(2, dir + "/own"), data)) return -1;
    return open(at(2, dir + "/own").c_str(), O_WRONLY | O_CLOEXEC);
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
  const int orphan_fd = open(at(2, "d/orphan").c_str(), O_RDONLY | O_CLOEXEC);
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
      int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
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
      int fd = open(at(2, "k/busy" + std::to_string(i % 4)).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) break;
      const bool ok = pwrite(fd, chunk.data(), chunk.size(), (i % 8) * chunk.size()) > 0;
      close(fd);
      if (!ok) break;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const pid_t daemon = daemon_of(2);
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
  // Node 2 records every write that reaches the LUN (fs/device/write_log_device.h).
  const std::string write_log = dir_ + "/writes-of-node-2-partitioned";
  Output m = restart_and_mount(2, ",write_log=" + write_log);
  ASSERT_EQ(m.status, 0) << m.text;
  const std::string before(256 << 10, 'p');
  const int fd = open_synced_file_of_node_2("p", before);
  ASSERT_GE(fd, 0) << strerror(errno);
  // A writer on node 2 (64 KiB writes, each fsync'd) until its writes fail or 20 s pass.
  sh("timeout -s KILL 20 sh -c 'i=0; while dd if=/dev/zero of=" + at(2, "p/busy") +
     " bs=64k count=1 seek=$((i % 16)) conv=fsync,notrunc status=none; do i=$((i + 1)); done' >/dev/null 2>&1 &");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  timespec cut_at{};
  clock_gettime(CLOCK_REALTIME, &cut_at);

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

  // The block-level proof: every write of node 2 that reached the LUN completed before node 1
  // began replaying its journal, and node 2 did write after the cut (the proof is not empty).
  std::string replay_line;
  std::istringstream log1(read_all(log_of(1)));
  const std::string replaying = "replaying its journal (from realtime ";
  for (std::string line; std::getline(log1, line);)
    if (line.find("recovery of node 2 (slot ") != std::string::npos && line.find(replaying) != std::string::npos)
      replay_line = line;
  ASSERT_FALSE(replay_line.empty()) << read_all(log_of(1));
  const size_t from = replay_line.find(replaying) + replaying.size();
  const std::string stamp = replay_line.substr(from, replay_line.find(')', from) - from);
  const uint64_t replay_ns = std::stoull(stamp.substr(0, stamp.find('.'))) * 1'000'000'000ull +
                             std::stoull(stamp.substr(stamp.find('.') + 1));
  const uint64_t cut_ns = uint64_t(cut_at.tv_sec) * 1'000'000'000ull + uint64_t(cut_at.tv_nsec);
  std::ifstream writes(write_log);
  char kind;
  uint64_t submitted, completed, offset, bytes, after_cut = 0, last_write = 0, records = 0;
  int err;
  while (writes >> kind >> submitted >> completed >> offset >> bytes >> err) {
    ++records;
    last_write = std::max(last_write, completed);
    if (completed > cut_ns && err == 0) ++after_cut;
  }
  ASSERT_GT(records, 0u) << "no write log";
  EXPECT_GT(after_cut, 0u) << "node 2 wrote nothing after the cut: the proof below proves nothing";
  EXPECT_LT(last_write, replay_ns) << "a write of node 2 reached the LUN " << (last_write - replay_ns) / 1000
                             << " µs after node 1 began replaying its journal";
  std::fprintf(stderr, "[ figures  ] node 2's last write completed %.3f s after the cut, %.3f s before node 1 replayed it\n",
               (double(last_write) - double(cut_ns)) / 1e9, (double(replay_ns) - double(last_write)) / 1e9);
}

// A daemon stopped for longer than its disk lease (SIGSTOP: a paused host, a swap storm)
// finds the lease run out when it runs again: its writes wait until a heartbeat renewal
// and a request granted through the lock space show it is still a member (nobody recovered
// it: its corosync stayed), then go on; not one write is lost or refused.
TEST_F(ClusterRecovery, ADaemonStoppedPastItsLeaseWritesAgainOnceItsMembershipIsConfirmed) {
  Output m = restart_and_mount(2, "");
  ASSERT_EQ(m.status, 0) << m.text;
  ASSERT_EQ(mkdir(at(2, "s").c_str(), 0755), 0) << strerror(errno);
  const int fd = open(at(2, "s/records").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  auto record = [](int i) { return std::string(4096, static_cast<char>('a' + i % 26)); };
  std::atomic<bool> stop{false};
  std::atomic<int> written{0};
  std::string failure;
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      const std::string r = record(i);
      if (pwrite(fd, r.data(), r.size(), off_t{i} * 4096) != 4096 || fsync(fd) != 0) {
        failure = "record " + std::to_string(i) + ": " + strerror(errno);
        return;
      }
      written = i + 1;
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const pid_t daemon = daemon_of(2);
  ASSERT_GT(daemon, 0) << "no mount.lunfs in node 2";
  ASSERT_EQ(kill(daemon, SIGSTOP), 0) << strerror(errno);
  std::this_thread::sleep_for(std::chrono::seconds(4));  // the lease: 2 s (heartbeat 1 s)
  ASSERT_EQ(kill(daemon, SIGCONT), 0) << strerror(errno);
  std::string log2;
  for (int i = 0; i < 100 && log2.find("disk lease back after it had run out") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log2 = read_all(log_of(2));
  }
  const int at_resume = written;
  for (int i = 0; i < 100 && written < at_resume + 10 && failure.empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  stop = true;
  writer.join();
  close(fd);
  EXPECT_NE(log2.find("disk lease back after it had run out"), std::string::npos) << log2;
  EXPECT_EQ(failure, "") << log2;
  EXPECT_GE(written.load(), at_resume + 10) << "node 2 did not write on after its lease came back";
  const std::string all = read_all(at(1, "s/records"));
  ASSERT_GE(all.size(), size_t(written) * 4096);
  for (int i = 0; i < written; ++i)
    ASSERT_EQ(all.compare(size_t(i) * 4096, 4096, record(i)), 0) << "record " << i << " as node 1 reads it";
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

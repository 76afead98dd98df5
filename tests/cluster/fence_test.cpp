// Fence agents on real Corosync (issue 13): node 1 mounts with -o fence_agent=, a small
// agent that records what it reads and kills the node its plug names (the harness's
// `kill`). A node cut off the network keeps renewing its heartbeat until it notices it
// lost quorum; with the agent, node 1 recovers it without waiting for its lease; with an
// agent that fails, it falls back to the lease. The fixture: cluster_mount_fixture.h.
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "tests/cluster/cluster_mount_fixture.h"

namespace lunfs::testing {
namespace {

class ClusterFence : public ClusterMountSuite {
 protected:
  static void SetUpTestSuite() {
    set_up_cluster("fa", 0);
    if (!skip_.empty() || !setup_error_.empty()) return;
    // Fails while DIR/agent-fails exists; records its input in DIR/agent-input.N.
    const std::string agent = dir_ + "/agent";
    if (!write_all(agent, "#!/bin/sh\n"
                          "input=$(cat)\n"
                          "plug=$(printf '%s\\n' \"$input\" | sed -n 's/^plug=//p')\n"
                          "printf '%s\\n' \"$input\" > " + dir_ + "/agent-input.$plug\n"
                          "if [ -e " + dir_ + "/agent-fails ]; then echo 'Failed: the PDU does not answer' >&2; exit 1; fi\n"
                          // The daemon runs in node 1's namespaces: the harness runs in this test's.
                          "exec nsenter -t " + std::to_string(getpid()) + " -m -n -- env LUNFS_CLUSTER_PREFIX=" + prefix() + " " + kHarness +
                          " kill \"$plug\" >/dev/null\n") ||
        chmod(agent.c_str(), 0755) != 0) {
      setup_error_ = "cannot write the agent";
      return;
    }
    Output r = mount(1, ",fence_agent=" + agent);
    if (r.status != 0) setup_error_ = "mount: " + r.text;
  }

  // Node 2 booted and mounted again, a file of its own, then cut off the network.
  void mount_and_cut_node_2(const std::string& dir) {
    sh(kHarness + " heal 2");
    Output m = restart_and_mount(2, "");
    ASSERT_EQ(m.status, 0) << m.text;
    ASSERT_EQ(mkdir(at(2, dir).c_str(), 0755), 0) << strerror(errno);
    ASSERT_TRUE(write_all(at(2, dir + "/own"), "node 2\n"));
    int fd = open(at(2, dir + "/own").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(fsync(fd), 0);
    close(fd);
    Output cut = sh(kHarness + " partition 2");
    ASSERT_EQ(cut.status, 0) << cut.text;
  }
};

TEST_F(ClusterFence, ACutOffNodeIsFencedByTheAgentAndRecoveredWithoutWaitingForItsLease) {
  mount_and_cut_node_2("a");
  Output ls = sh("timeout -s KILL 60 ls -l " + at(1, "a") + " > /dev/null");
  ASSERT_EQ(ls.status, 0) << "node 1 could not list the cut-off node's directory: " << ls.text;
  EXPECT_EQ(read_all(at(1, "a/own")), "node 2\n");
  EXPECT_EQ(read_all(dir_ + "/agent-input.2"), "action=off\nplug=2\nnodename=2\n");
  const std::string log = read_all(dir_ + "/node1.log");
  EXPECT_NE(log.find("fenced by " + dir_ + "/agent"), std::string::npos) << log;
  EXPECT_NE(log.find("its lease is not waited for"), std::string::npos) << log;
  EXPECT_EQ(log.find("waits for its disk lease"), std::string::npos) << log;
}

TEST_F(ClusterFence, AFailingAgentFallsBackToTheLease) {
  ASSERT_TRUE(write_all(dir_ + "/agent-fails", ""));
  mount_and_cut_node_2("b");
  Output ls = sh("timeout -s KILL 60 ls -l " + at(1, "b") + " > /dev/null");
  ASSERT_EQ(ls.status, 0) << "node 1 could not list the cut-off node's directory: " << ls.text;
  EXPECT_EQ(read_all(at(1, "b/own")), "node 2\n");
  const std::string log = read_all(dir_ + "/node1.log");
  EXPECT_NE(log.find("exited 1: Failed: the PDU does not answer; waiting for its disk lease to run out instead"),
            std::string::npos)
      << log;
  unlink((dir_ + "/agent-fails").c_str());
}

TEST_F(ClusterFence, FsckIsCleanAfterTheSurvivorUnmounts) {
  Output r = sh(kHarness + " exec 1 umount " + mnt_);
  EXPECT_EQ(r.status, 0) << r.text;
  // Node 2, cut off and fenced by itself: back on the network, its daemon ended.
  sh(kHarness + " heal 2");
  sh(kHarness + " exec 2 umount -l " + mnt_);
  sh(kHarness + " kill 2");
  r = fsck_after_daemons_finish();
  EXPECT_EQ(r.status, 0) << r.text;
}

}  // namespace
}  // namespace lunfs::testing

// Lock manager on real Corosync: a 3-node cluster from tests/cluster/lunfs-cluster (network
// and mount namespaces, one corosync each), one lunfs-dlm-node per node. Needs root and
// corosync; skipped otherwise. The cluster is started once for the suite and torn down
// at the end, also when a test fails.
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "dlm/types.h"
#include "tests/cluster/node_process.h"

namespace lunfs::dlm::testing {
namespace {

using namespace std::chrono_literals;

const std::string kHarness = LUNFS_CLUSTER_HARNESS;
const std::string kNode = LUNFS_DLM_NODE;
const std::string kAdmin = LUNFS_ADMIN;

std::string prefix() { return "lt" + std::to_string(getpid() % 100000); }

int sh(const std::string& cmd) {
  std::string full = "LUNFS_CLUSTER_PREFIX=" + prefix() + " " + cmd;
  return std::system(full.c_str());
}
int harness(const std::string& args) { return sh(kHarness + " " + args + " >/dev/null 2>&1"); }
std::string harness_output(const std::string& args) {
  std::string full = "LUNFS_CLUSTER_PREFIX=" + prefix() + " " + kHarness + " " + args + " 2>&1";
  std::string out;
  if (FILE* f = popen(full.c_str(), "r")) {
    char b[4096];
    size_t n;
    while ((n = fread(b, 1, sizeof b, f)) > 0) out.append(b, n);
    pclose(f);
  }
  return out;
}

class Cluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The harness backgrounds corosync and exits: become the reaper of such orphans so
    // they are collected here, not left to init.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    if (geteuid() != 0) skip_ = "needs root (network namespaces, corosync)";
    else if (std::system("command -v corosync >/dev/null 2>&1") != 0) skip_ = "corosync not installed";
    else if (std::system("unshare --net --mount true >/dev/null 2>&1") != 0)
      skip_ = "no network and mount namespaces here (unshare --net --mount failed)";
    else if (harness("up 3") != 0) {
      harness("down");
      skip_.clear();
      up_failed_ = true;
    }
  }
  static void TearDownTestSuite() {
    if (skip_.empty()) harness("down");
    while (waitpid(-1, nullptr, WNOHANG) > 0) {}
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << "cluster tests skipped: " << skip_;
    ASSERT_FALSE(up_failed_) << "lunfs-cluster up 3 failed";
  }
  std::unique_ptr<NodeProcess> join(int node, const std::string& ls) {
    auto p = std::make_unique<NodeProcess>(kHarness_env(), node, kNode, ls);
    std::string r = p->answer(40s);
    EXPECT_EQ(r.rfind("ready ", 0), 0u) << "node " << node << " did not join: " << r;
    return p;
  }
  static std::string kHarness_env() {
    setenv("LUNFS_CLUSTER_PREFIX", prefix().c_str(), 1);
    return kHarness;
  }
  static std::string skip_;
  static bool up_failed_;
};
std::string Cluster::skip_;
bool Cluster::up_failed_ = false;

TEST_F(Cluster, LocksLvbAndDumpAcrossThreeNodes) {
  auto n1 = join(1, "basic"), n2 = join(2, "basic"), n3 = join(3, "basic");
  EXPECT_EQ(n1->command("members", 5s), "ok 1 2 3");
  // An unused resource is forgotten with its LVB: node 3 keeps it with NL, as GFS2 does.
  EXPECT_EQ(n3->command("lock r NL", 10s).rfind("ok 1 invalid", 0), 0u);
  EXPECT_EQ(n1->command("lock r EX", 10s).rfind("ok 1 invalid", 0), 0u);
  EXPECT_EQ(n2->command("lock r PR 1500", 10s), "err timed-out") << "EX is held on node 1";
  EXPECT_TRUE(n1->wait_event("event blocking 1 PR", 5s)) << "holder told that PR waits";
  EXPECT_EQ(n3->command("lock r EX noqueue", 10s), "err again");
  EXPECT_EQ(n1->command("unlock 1 hello", 5s), "ok");
  std::string r2 = n2->command("lock r PR", 10s);
  EXPECT_EQ(r2.substr(r2.rfind(' ') + 1), "hello") << "LVB written on unlock from EX";
  EXPECT_EQ(n3->command("convert 1 PR", 10s), "ok hello") << "PR and PR coexist";
  std::string dump = harness_output("exec 1 " + kAdmin + " locks basic");
  EXPECT_NE(dump.find("resource \"r\" lvb "), std::string::npos) << dump;
  EXPECT_NE(dump.find("granted node 2"), std::string::npos) << dump;
  EXPECT_NE(dump.find("granted node 3"), std::string::npos) << dump;
  EXPECT_EQ(dump.find("granted node 1"), std::string::npos) << dump;
  // Non-root is refused by the control socket.
  std::string denied = harness_output("exec 1 setpriv --reuid=65534 --regid=65534 --clear-groups " +
                                      kAdmin + " locks basic");
  EXPECT_NE(denied.find("root only"), std::string::npos) << denied;
}

// Safety on real Corosync: three processes hammer four resources with random modes; the
// intervals in which each one relied on a grant (CLOCK_MONOTONIC, one machine) must never
// overlap with an incompatible mode.
TEST_F(Cluster, RandomWorkloadNeverOverlapsIncompatibleGrants) {
  std::vector<std::unique_ptr<NodeProcess>> ns;
  for (int n = 1; n <= 3; ++n) ns.push_back(join(n, "stress"));
  struct Iv {
    int node;
    std::string res;
    Mode mode;
    uint64_t t0, t1;
  };
  std::vector<Iv> ivs;
  for (int n = 0; n < 3; ++n) {
    // Start all three, then read their answers.
    ns[n]->command("stress 150 " + std::to_string(n + 7), 0ms);
  }
  for (int n = 0; n < 3; ++n) {
    auto lines = ns[n]->lines_until("ok", 120s);
    ASSERT_FALSE(lines.empty());
    ASSERT_EQ(lines.back(), "ok") << "node " << n + 1;
    for (auto& l : lines) {
      std::istringstream in(l);
      std::string tag, res, mode;
      Iv iv{n + 1, "", Mode::NL, 0, 0};
      if (in >> tag >> res >> mode >> iv.t0 >> iv.t1 && tag == "iv") {
        iv.res = res;
        iv.mode = *parse_mode(mode);
        ivs.push_back(iv);
      }
    }
  }
  ASSERT_EQ(ivs.size(), 450u);
  int conflicts_checked = 0;
  for (size_t i = 0; i < ivs.size(); ++i)
    for (size_t j = i + 1; j < ivs.size(); ++j) {
      auto &a = ivs[i], &b = ivs[j];
      if (a.res != b.res || a.node == b.node || compatible(a.mode, b.mode)) continue;
      ++conflicts_checked;
      EXPECT_TRUE(a.t1 <= b.t0 || b.t1 <= a.t0)
          << a.res << ": node " << a.node << " " << mode_name(a.mode) << " and node " << b.node
          << " " << mode_name(b.mode) << " held at once";
    }
  EXPECT_GT(conflicts_checked, 100) << "the workload must actually contend";
}

TEST_F(Cluster, PartitionedMinorityGetsNoGrantsMajorityRecovers) {
  auto n1 = join(1, "part"), n2 = join(2, "part"), n3 = join(3, "part");
  ASSERT_EQ(n3->command("lock journal3 EX", 10s).rfind("ok ", 0), 0u);
  ASSERT_EQ(harness("partition 3"), 0);
  EXPECT_TRUE(n3->wait_event("event quorum 0", 20s)) << "the minority loses quorum";
  EXPECT_EQ(n3->command("lock fresh PR noqueue", 10s), "err no-quorum");
  EXPECT_EQ(n3->command("lock other PR 2000", 10s), "err timed-out") << "no grants";
  EXPECT_EQ(n1->command("wait-recover 3 20000", 25s), "ok 1") << "hook lists node 3's lock";
  EXPECT_EQ(n1->command("quorate", 5s), "ok 1");
  EXPECT_EQ(n1->command("lock journal3 EX 1000", 5s), "err timed-out")
      << "held until the file system says node 3 is recovered";
  EXPECT_EQ(n2->command("recovery-done 3", 5s), "ok");
  EXPECT_EQ(n1->command("lock journal3 EX", 10s).rfind("ok ", 0), 0u);
  EXPECT_EQ(n2->command("lock fresh PR", 10s).rfind("ok ", 0), 0u) << "majority goes on";
  ASSERT_EQ(harness("heal 3"), 0);
  EXPECT_TRUE(n3->wait_event("event failed stale", 30s))
      << "the cut-off node must not merge its stale table";
  n3->stop();
  auto again = join(3, "part");  // a restarted member gets the current table
  EXPECT_EQ(again->command("lock fresh PR", 10s).rfind("ok ", 0), 0u);
  EXPECT_EQ(again->command("lock journal3 PR 1000", 5s), "err timed-out") << "node 1 has EX";
}

TEST_F(Cluster, CorosyncCrashFailsTheLockSpaceCleanly) {
  auto n1 = join(1, "crash"), n2 = join(2, "crash"), n3 = join(3, "crash");
  ASSERT_EQ(n1->command("lock held EX", 10s).rfind("ok ", 0), 0u);
  // Node 3 waits for a lock when its corosync dies: the caller gets an error, no hang.
  n3->command("lock held EX 60000", 0ms);
  std::this_thread::sleep_for(500ms);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(harness("stop-corosync 3"), 0);
  EXPECT_EQ(n3->answer(10s), "err shutdown");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  EXPECT_TRUE(n3->wait_event("event failed shutdown", 5s));
  EXPECT_EQ(n3->command("lock other PR", 5s), "err shutdown");
  n3->stop();
  ASSERT_EQ(harness("start 3"), 0);
  EXPECT_EQ(n2->command("lock other PR", 10s).rfind("ok ", 0), 0u) << "the others go on";
}

bool node_quorate(int node, bool want, std::chrono::seconds within) {
  auto deadline = std::chrono::steady_clock::now() + within;
  std::string expect = want ? "Yes" : "No";
  while (std::chrono::steady_clock::now() < deadline) {
    std::string out = harness_output("exec " + std::to_string(node) + " corosync-quorumtool -s");
    auto at = out.find("Quorate:");
    if (at != std::string::npos && out.find(expect, at) == out.find_first_not_of(" ", at + 8))
      return true;
    std::this_thread::sleep_for(200ms);
  }
  return false;
}

TEST_F(Cluster, NoJoinWithoutQuorum) {
  ASSERT_EQ(harness("partition 3"), 0);
  ASSERT_TRUE(node_quorate(3, false, 20s));
  auto t0 = std::chrono::steady_clock::now();
  NodeProcess lonely(kHarness_env(), 3, kNode, "lonely", "2000");
  EXPECT_EQ(lonely.answer(10s), "err no-quorum")
      << "a cut-off node must not found a lock space of its own";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 8s) << "the join timeout is honoured";
  ASSERT_EQ(harness("heal 3"), 0);
  EXPECT_TRUE(node_quorate(3, true, 30s));
}

TEST_F(Cluster, KilledNodesLocksGrantableAfterRecovery) {
  auto n1 = join(1, "kill"), n2 = join(2, "kill"), n3 = join(3, "kill");
  ASSERT_EQ(n2->command("lock inode7 EX", 10s).rfind("ok ", 0), 0u);
  EXPECT_EQ(n1->command("auto-recover on", 5s), "ok");
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(harness("kill 2"), 0);
  std::string r = n3->command("lock inode7 PR 20000", 25s);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  EXPECT_EQ(r.rfind("ok ", 0), 0u) << r;
  EXPECT_LT(took.count(), 10000);
  std::cout << "[ figures  ] kill -> lock grantable elsewhere: " << took.count() << " ms\n";
  n2->stop();
  ASSERT_EQ(harness("start 2"), 0);
}

}  // namespace
}  // namespace lunfs::dlm::testing

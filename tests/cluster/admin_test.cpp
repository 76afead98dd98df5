// The admin command on cluster mounts (the fixture: cluster_mount_fixture.h): `lunfs status`
// on a node shows both mounted nodes' slots by node id and that node's glocks (asked over
// the mount's control socket, the lock space's), `lunfs locks FSNAME` dumps the lock table
// of a mounted node and `lunfs locks --stats FSNAME` its lock-message counters, and `lunfs
// tune` is refused while the LUN is mounted.
#include <set>

#include "tests/cluster/cluster_mount_fixture.h"

namespace lunfs::testing {
namespace {

class ClusterAdmin : public ClusterMountSuite {
 protected:
  static void SetUpTestSuite() { set_up_cluster("ad", 2); }
};

TEST_F(ClusterAdmin, StatusOnANodeShowsBothMountsAndItsGlocksAndLocksDumpsTheLockSpace) {
  ASSERT_TRUE(write_all(at(1, "from1"), "node 1\n"));
  Output status = sh(kHarness + " exec 1 " + kBin + "/lunfs status --json " + mnt_);
  ASSERT_EQ(status.status, 0) << status.text;
  const std::string json = dir_ + "/status.json";
  ASSERT_TRUE(write_all(json, status.text));
  Output q = sh("python3 -c 'import json\nd=json.load(open(\"" + json + "\"))\n"
                "live=[s[\"heartbeat\"] for s in d[\"slots\"] if s[\"heartbeat\"][\"state\"]==\"live\"]\n"
                "print(len(live), len(set(h[\"node\"] for h in live if h[\"node\"])), d[\"mountpoint\"], "
                "any(l.startswith(\"inode:\") for l in d[\"glocks\"]), d[\"recovery\"], len(d[\"members\"]))'");
  EXPECT_EQ(q.text, "2 2 " + mnt_ + " True [] 2\n") << status.text;  // the lock space: the two mounted nodes

  Output text = sh(kHarness + " exec 2 " + kBin + "/lunfs status " + mnt_);
  ASSERT_EQ(text.status, 0) << text.text;
  EXPECT_NE(text.text.find("Glocks of the mount on this host: "), std::string::npos) << text.text;
  EXPECT_NE(text.text.find("mounted, owner node "), std::string::npos) << text.text;
  EXPECT_NE(text.text.find("Recovery: none"), std::string::npos) << text.text;
  EXPECT_NE(text.text.find("Cluster members (node ids): "), std::string::npos) << text.text;

  Output locks = sh(kHarness + " exec 1 " + kBin + "/lunfs locks vmstore");
  EXPECT_EQ(locks.status, 0) << locks.text;
  EXPECT_FALSE(locks.text.empty());

  // The counters: node 1 wrote a file, so it sent lock requests, and node 2's mount was
  // seen by it; a file created on node 2 then counts on both.
  auto counter = [](const std::string& text, const std::string& name) -> long {
    const size_t at = text.find(name + " ");
    return at == std::string::npos ? -1 : std::stol(text.substr(at + name.size() + 1));
  };
  Output before = sh(kHarness + " exec 1 " + kBin + "/lunfs locks --stats vmstore");
  ASSERT_EQ(before.status, 0) << before.text;
  EXPECT_GT(counter(before.text, "sent.request"), 0) << before.text;
  ASSERT_TRUE(write_all(at(2, "from2"), "node 2\n"));
  Output after = sh(kHarness + " exec 1 " + kBin + "/lunfs locks --stats vmstore");
  EXPECT_GT(counter(after.text, "received.request"), counter(before.text, "received.request")) << after.text;
  EXPECT_GE(counter(after.text, "blocking_callbacks"), 1) << "node 2 created in the root node 1 held:\n" << after.text;
  // Node 2's join was a membership change after which both compared their tables.
  EXPECT_GE(counter(after.text, "received.digest"), 1) << after.text;
  EXPECT_EQ(counter(after.text, "divergences"), 0) << after.text;

  Output tune = sh(kBin + "/lunfs tune -L other " + lun_);
  EXPECT_EQ(tune.status, 1) << tune.text;
  EXPECT_NE(tune.text.find("in use on this host by mount.lunfs"), std::string::npos) << tune.text;
  EXPECT_NE(tune.text.find("nothing was changed"), std::string::npos) << tune.text;
}

}  // namespace
}  // namespace lunfs::testing

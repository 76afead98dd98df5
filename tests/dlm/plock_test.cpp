// The byte-range lock table (dlm/plock_table.h) on its own: ranges split and merge,
// upgrades, conflicts, waiters, cancel, owner release, flock, deadlock detection, encoding;
// then replicated over a deterministic 3-node in-process lock space: every node decides
// alike, a joiner's snapshot carries the table, and a node that leaves loses its locks.
#include <gtest/gtest.h>

#include <cerrno>
#include <map>

#include "dlm/plock_table.h"
#include "tests/dlm/cluster_fixture.h"

namespace lunfs::dlm::testing {
namespace {

constexpr uint64_t kIno = 42;

// Three nodes' replicas of one table, fed the same ops (as the stream would), with helpers
// that say what the sending node's caller sees. `t` is node 1's replica.
class Table : public ::testing::Test {
 protected:
  // Applies a lock op from (node, owner) and returns its immediate result, or -1 while it waits.
  int lock(NodeId node, uint64_t owner, uint64_t s, uint64_t e, PlockType type, bool wait = false,
           PlockClass cls = PlockClass::kPosix) {
    PlockOp op{.cmd = PlockCmd::kLock, .cls = cls, .type = type, .wait = wait, .pid = uint32_t(100 + owner),
               .ino = kIno, .owner = owner, .start = s, .end = e, .req = ++next};
    return decide(node, op);
  }
  int decide(NodeId node, const PlockOp& op) {
    for (auto& [n, replica] : replicas) {
      std::vector<PlockResult> out;
      replica.apply(node, op, quorate, out);
      collect(out);
      std::string why;
      EXPECT_TRUE(replica.check(&why)) << why;
      EXPECT_EQ(replica.encode(), t.encode()) << "replicas differ after the same op";
    }
    auto it = results.find(op.req);
    return it == results.end() ? -1 : it->second;
  }
  void collect(const std::vector<PlockResult>& out) {
    for (const PlockResult& r : out) results[r.req] = r.err;
  }
  void drop_node(NodeId node) {
    for (auto& [n, replica] : replicas) replica.drop_node(node);
  }
  void regain_quorum() {
    quorate = true;
    for (auto& [n, replica] : replicas) {
      std::vector<PlockResult> out;
      replica.regain_quorum(out);
      collect(out);
    }
  }
  std::vector<std::pair<uint64_t, uint64_t>> ranges(uint64_t owner, PlockClass cls = PlockClass::kPosix) {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    for (const Plock& l : t.locks(kIno, cls))
      if (l.owner.owner == owner) out.emplace_back(l.start, l.end);
    return out;
  }
  std::map<NodeId, PlockTable> replicas = [] {
    std::map<NodeId, PlockTable> m;
    for (NodeId n : {1, 2, 3}) m.emplace(n, n);
    return m;
  }();
  PlockTable& t = replicas.at(1);
  uint64_t next = 0;
  bool quorate = true;
  std::map<uint64_t, int> results;  // what each request's node was told, by request
};

using R = std::vector<std::pair<uint64_t, uint64_t>>;
constexpr auto kRd = PlockType::kRead;
constexpr auto kWr = PlockType::kWrite;
constexpr auto kUn = PlockType::kUnlock;

TEST_F(Table, UnlockInTheMiddleSplitsAndRelockMerges) {
  EXPECT_EQ(lock(1, 1, 0, 99, kWr), 0);
  EXPECT_EQ(lock(1, 1, 40, 59, kUn), 0);
  EXPECT_EQ(ranges(1), (R{{0, 39}, {60, 99}}));
  EXPECT_EQ(lock(1, 1, 40, 59, kWr), 0);
  EXPECT_EQ(ranges(1), (R{{0, 99}})) << "adjacent ranges of one type are one lock";
  EXPECT_EQ(lock(1, 1, 50, 50, kRd), 0);
  EXPECT_EQ(ranges(1), (R{{0, 49}, {50, 50}, {51, 99}})) << "a different type splits";
  EXPECT_EQ(lock(1, 1, 100, kPlockEof, kWr), 0);
  EXPECT_EQ(ranges(1), (R{{0, 49}, {50, 50}, {51, kPlockEof}}));
  EXPECT_EQ(lock(1, 1, 0, kPlockEof, kUn), 0);
  EXPECT_TRUE(ranges(1).empty());
  EXPECT_EQ(t.encode(), PlockTable(1).encode()) << "an inode without locks is forgotten";
}

TEST_F(Table, ConflictsNeedOverlapAndAWriter) {
  EXPECT_EQ(lock(1, 1, 0, 9, kRd), 0);
  EXPECT_EQ(lock(2, 2, 5, 15, kRd), 0) << "readers share";
  EXPECT_EQ(lock(2, 3, 5, 5, kWr), EAGAIN);
  EXPECT_EQ(lock(2, 3, 16, 20, kWr), 0) << "no overlap, no conflict";
  EXPECT_EQ(lock(1, 4, 20, kPlockEof, kRd), EAGAIN);
  EXPECT_EQ(lock(1, 1, 0, 9, kWr), EAGAIN) << "the upgrade meets owner 2's read lock";
  EXPECT_EQ(ranges(1), (R{{0, 9}})) << "a refused upgrade keeps the read lock";
  EXPECT_EQ(t.locks(kIno, PlockClass::kPosix)[0].type, kRd);
  // Same owner id on another node is another owner.
  EXPECT_EQ(lock(2, 1, 0, 0, kWr), EAGAIN);
}

TEST_F(Table, GetReportsTheConflictingLockWithItsOwner) {
  EXPECT_EQ(lock(2, 7, 10, 19, kWr), 0);
  std::vector<PlockResult> out;
  t.apply(1, {.cmd = PlockCmd::kGet, .type = kRd, .ino = kIno, .owner = 1, .start = 0, .end = 10, .req = 99}, true,
          out);
  t.apply(2, {.cmd = PlockCmd::kGet, .type = kRd, .ino = kIno, .owner = 8, .start = 0, .end = 10, .req = 98}, true,
          out);
  ASSERT_EQ(out.size(), 1u) << "results go to the table's own node only";
  ASSERT_TRUE(out[0].conflict);
  EXPECT_EQ(out[0].conflict->owner, (PlockOwner{2, 7}));
  EXPECT_EQ(out[0].conflict->start, 10u);
  EXPECT_EQ(out[0].conflict->end, 19u);
  EXPECT_EQ(out[0].conflict->pid, 107u);
  out.clear();
  t.apply(1, {.cmd = PlockCmd::kGet, .type = kRd, .ino = kIno, .owner = 1, .start = 20, .end = 30, .req = 97}, true,
          out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].conflict);
}

TEST_F(Table, WaitersAreGrantedOnReleaseNotFifo) {
  EXPECT_EQ(lock(2, 1, 0, 9, kRd), 0);
  EXPECT_EQ(lock(1, 2, 0, 9, kWr, true), -1);
  const uint64_t writer = next;
  EXPECT_EQ(lock(1, 3, 0, 9, kRd, true), 0) << "a reader that conflicts with no granted lock passes a waiting writer";
  EXPECT_EQ(t.waiting(kIno), 1u);
  EXPECT_EQ(lock(2, 1, 0, 9, kUn), 0);
  EXPECT_FALSE(results.count(writer)) << "reader 3 is still in the way";
  EXPECT_EQ(lock(1, 3, 0, 9, kUn), 0);
  EXPECT_EQ(results.at(writer), 0);
  EXPECT_EQ(ranges(2), (R{{0, 9}}));
}

TEST_F(Table, UpgradeWaitsKeepingTheReadLock) {
  EXPECT_EQ(lock(1, 1, 0, 9, kRd), 0);
  EXPECT_EQ(lock(1, 2, 0, 9, kRd), 0);
  EXPECT_EQ(lock(1, 1, 0, 9, kWr, true), -1);
  const uint64_t up = next;
  EXPECT_EQ(lock(1, 3, 5, 5, kWr), EAGAIN) << "owner 1 still holds its read lock while it waits";
  EXPECT_EQ(lock(1, 2, 0, 9, kUn), 0);
  EXPECT_EQ(results.at(up), 0);
  EXPECT_EQ(t.locks(kIno, PlockClass::kPosix).at(0).type, kWr);
}

TEST_F(Table, CancelEndsAWaitWithEintrAndALateCancelIsIgnored) {
  EXPECT_EQ(lock(1, 1, 0, 0, kWr), 0);
  EXPECT_EQ(lock(1, 2, 0, 0, kWr, true), -1);
  const uint64_t w = next;
  EXPECT_EQ(decide(1, {.cmd = PlockCmd::kCancel, .req = w}), EINTR);
  EXPECT_EQ(t.waiting(kIno), 0u);
  EXPECT_EQ(lock(1, 2, 0, 0, kWr, true), -1);
  const uint64_t w2 = next;
  EXPECT_EQ(lock(1, 1, 0, 0, kUn), 0);
  EXPECT_EQ(results.at(w2), 0);
  results.erase(w2);
  EXPECT_EQ(decide(1, {.cmd = PlockCmd::kCancel, .req = w2}), -1) << "granted first: the grant stands";
  EXPECT_EQ(ranges(2), (R{{0, 0}}));
}

TEST_F(Table, ReleaseDropsEveryLockOfTheOwnerAndWakesWaiters) {
  EXPECT_EQ(lock(1, 1, 0, 9, kWr), 0);
  EXPECT_EQ(lock(1, 1, 20, 29, kRd), 0);
  EXPECT_EQ(lock(1, 2, 0, 29, kWr, true), -1);
  const uint64_t w = next;
  EXPECT_EQ(decide(1, {.cmd = PlockCmd::kRelease, .ino = kIno, .owner = 1, .req = ++next}), 0);
  EXPECT_TRUE(ranges(1).empty());
  EXPECT_EQ(results.at(w), 0);
}

TEST_F(Table, FlockIsItsOwnClassAndAConversionGivesUpTheOldLockFirst) {
  constexpr auto kF = PlockClass::kFlock;
  EXPECT_EQ(lock(1, 1, 0, 9, kWr), 0);
  EXPECT_EQ(lock(1, 2, 0, kPlockEof, kWr, false, kF), 0) << "flock and fcntl locks do not meet";
  EXPECT_EQ(lock(1, 3, 0, kPlockEof, kRd, false, kF), EAGAIN);
  EXPECT_EQ(lock(1, 2, 0, kPlockEof, kRd, false, kF), 0) << "downgrade";
  EXPECT_EQ(lock(1, 3, 0, kPlockEof, kRd, false, kF), 0);
  EXPECT_EQ(lock(1, 2, 0, kPlockEof, kWr, false, kF), EAGAIN);
  EXPECT_TRUE(ranges(2, kF).empty()) << "as in Linux, a failed flock upgrade has dropped the shared lock";
  EXPECT_EQ(lock(1, 3, 0, kPlockEof, kWr, false, kF), 0);
}

TEST_F(Table, DeadlockAcrossNodesIsRefused) {
  EXPECT_EQ(lock(1, 1, 0, 0, kWr), 0);
  EXPECT_EQ(lock(2, 1, 1, 1, kWr), 0);
  EXPECT_EQ(lock(1, 1, 1, 1, kWr, true), -1);  // node 1's owner waits for node 2's
  EXPECT_EQ(lock(2, 1, 0, 0, kWr, true), EDEADLK);
  EXPECT_EQ(lock(2, 1, 0, 0, kWr), EAGAIN) << "without waiting there is no deadlock";
  EXPECT_EQ(t.waiting(kIno), 1u);
}

TEST_F(Table, DeadlockThroughThreeOwnersOnThreeNodes) {
  EXPECT_EQ(lock(1, 1, 0, 0, kWr), 0);
  EXPECT_EQ(lock(2, 2, 1, 1, kWr), 0);
  EXPECT_EQ(lock(3, 3, 2, 2, kRd), 0);
  EXPECT_EQ(lock(1, 1, 1, 1, kWr, true), -1);  // 1 -> 2
  EXPECT_EQ(lock(2, 2, 2, 2, kWr, true), -1);  // 2 -> 3
  EXPECT_EQ(lock(3, 3, 0, 0, kRd, true), EDEADLK);  // 3 -> 1 closes the cycle
  EXPECT_EQ(lock(3, 4, 0, 0, kRd, true), -1) << "another owner may wait there";
  // No false positive: a waiter whose blocker waits for someone else.
  EXPECT_EQ(lock(3, 5, 1, 1, kRd, true), -1);
}

TEST_F(Table, NoQuorumRefusesLocksButNotUnlocksAndNodeLossFreesAfterQuorum) {
  EXPECT_EQ(lock(2, 1, 0, 9, kWr), 0);
  EXPECT_EQ(lock(1, 2, 0, 9, kWr, true), -1);
  const uint64_t w = next;
  drop_node(2);
  quorate = false;
  EXPECT_EQ(lock(1, 3, 100, 109, kWr), ENOLCK);
  EXPECT_EQ(lock(1, 3, 0, 9, kUn), 0);
  EXPECT_FALSE(results.count(w));
  regain_quorum();
  EXPECT_EQ(results.at(w), 0);
}

TEST_F(Table, EncodingRoundTripsAndRejectsGarbage) {
  EXPECT_EQ(lock(1, 1, 0, 9, kWr), 0);
  EXPECT_EQ(lock(2, 2, 0, 9, kRd, true), -1);
  EXPECT_EQ(lock(2, 2, 0, kPlockEof, kRd, false, PlockClass::kFlock), 0);
  const std::string blob = t.encode();
  PlockTable copy(2);
  ASSERT_TRUE(copy.decode(blob));
  EXPECT_EQ(copy.encode(), blob);
  EXPECT_EQ(copy.dump(), t.dump());
  for (size_t cut = 0; cut < blob.size(); ++cut) EXPECT_FALSE(copy.decode(blob.substr(0, cut)));
  std::string bad = blob;
  bad[bad.size() / 2] ^= 0x5a;
  (void)copy.decode(bad);  // must not crash; ASan checks the reads
  EXPECT_FALSE(decode_plock("x"));
  PlockOp inverted{.start = 9, .end = 1};
  EXPECT_FALSE(decode_plock(encode(inverted))) << "start after end";
}

// ---- replicated ----

class Replicated : public ::testing::Test {
 protected:
  Replicated() : c(3) {
    for (NodeId n : {1, 2, 3}) {
      c.add(n);
      c.run();
    }
  }
  // Sends the op from node n; returns the result once delivered (-1: still waiting).
  int send(NodeId n, PlockOp op, uint64_t* req = nullptr) {
    uint64_t id = 0;
    EXPECT_EQ(c.ls(n).plock(op, [this, n](const PlockResult& r) { results[{n, r.req}] = r; }, &id), Status::kOk);
    if (req) *req = id;
    c.run();
    auto it = results.find({n, id});
    return it == results.end() ? -1 : it->second.err;
  }
  static PlockOp lk(uint64_t owner, uint64_t s, uint64_t e, PlockType type, bool wait = false) {
    return {.cmd = PlockCmd::kLock, .type = type, .wait = wait, .pid = 7, .ino = kIno, .owner = owner, .start = s,
            .end = e};
  }
  void expect_equal_tables() {
    for (NodeId n : {2, 3})
      if (c.has(n)) {
        EXPECT_EQ(c.ls(n).table_state(), c.ls(1).table_state());
      }
  }
  // Before the cluster: a lock space that goes answers what still waits (ENOLCK).
  std::map<std::pair<NodeId, uint64_t>, PlockResult> results;
  InprocCluster c;
};

TEST_F(Replicated, EveryNodeDecidesAlikeAndWaitersWakeOnRemoteUnlock) {
  EXPECT_EQ(send(1, lk(1, 0, 99, kWr)), 0);
  EXPECT_EQ(send(2, lk(1, 50, 50, kRd)), EAGAIN);
  uint64_t w = 0;
  EXPECT_EQ(send(2, lk(1, 50, 50, kRd, true), &w), -1);
  expect_equal_tables();
  PlockOp get = lk(9, 0, 0, kRd);
  get.cmd = PlockCmd::kGet;
  EXPECT_EQ(send(3, get), 0);
  ASSERT_TRUE(results.rbegin()->second.conflict);
  EXPECT_EQ(results.rbegin()->second.conflict->owner.node, 1u);
  EXPECT_EQ(send(1, lk(1, 0, 99, kUn)), 0);
  EXPECT_EQ(results.at({2, w}).err, 0);
  expect_equal_tables();
  // One agreed message per operation, and none for the grant of a waiter.
  EXPECT_EQ(c.ls(3).stats().received[size_t(OpType::kPlock)], 4u);  // its own kGet is not "received"
}

TEST_F(Replicated, CancelFromTheWaitingNode) {
  EXPECT_EQ(send(1, lk(1, 0, 0, kWr)), 0);
  uint64_t w = 0;
  EXPECT_EQ(send(2, lk(1, 0, 0, kWr, true), &w), -1);
  EXPECT_EQ(c.ls(2).plock_cancel(w), Status::kOk);
  c.run();
  EXPECT_EQ(results.at({2, w}).err, EINTR);
  expect_equal_tables();
}

TEST_F(Replicated, ANodeThatLeavesLosesItsLocksAtTheSamePointEverywhere) {
  EXPECT_EQ(send(1, lk(1, 0, 9, kWr)), 0);
  uint64_t w = 0;
  EXPECT_EQ(send(2, lk(1, 0, 9, kWr, true), &w), -1);
  EXPECT_EQ(send(3, lk(1, 0, 9, kRd, true)), -1);
  c.bus().crash(1);
  c.remove(1);
  c.run();
  EXPECT_EQ(results.at({2, w}).err, 0) << "granted once quorum is restated for the survivors";
  EXPECT_EQ(c.ls(2).table_state(), c.ls(3).table_state());
  EXPECT_EQ(send(3, lk(2, 0, 9, kRd)), EAGAIN) << "node 2 holds it now";
}

TEST_F(Replicated, AJoinerGetsThePlockTableInItsSnapshot) {
  EXPECT_EQ(send(1, lk(1, 0, 9, kWr)), 0);
  EXPECT_EQ(send(2, lk(1, 0, 9, kWr, true)), -1);
  c.add(4);
  c.run();
  ASSERT_EQ(c.ls(4).state(), LockSpaceImpl::State::kReady);
  EXPECT_EQ(c.ls(4).table_state(), c.ls(1).table_state());
  EXPECT_NE(c.ls(4).dump().find("plock granted inode 42 posix node 1"), std::string::npos) << c.ls(4).dump();
  EXPECT_EQ(send(4, lk(1, 5, 5, kRd)), EAGAIN);
  EXPECT_EQ(c.ls(4).stats().divergences, 0u);
}

TEST_F(Replicated, AFailedLockSpaceAnswersWaitersWithEnolck) {
  EXPECT_EQ(send(1, lk(1, 0, 0, kWr)), 0);
  uint64_t w = 0;
  EXPECT_EQ(send(2, lk(1, 0, 0, kWr, true), &w), -1);
  c.ls(2).leave();
  EXPECT_EQ(results.at({2, w}).err, ENOLCK);
}

}  // namespace
}  // namespace lunfs::dlm::testing

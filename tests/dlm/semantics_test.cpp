// Lock semantics on a deterministic 3-node in-process cluster: compatibility, FIFO and
// conversion rules, conversion deadlock, NOQUEUE, cancel, LVBs, blocking callbacks,
// quorum, recovery hook, joins.
#include <gtest/gtest.h>
#include <xxhash.h>

#include "dlm/wire.h"
#include "tests/dlm/cluster_fixture.h"

namespace lunfs::dlm::testing {
namespace {

class Semantics : public ::testing::Test {
 protected:
  Semantics() : c(3) {
    for (NodeId n : {1, 2, 3}) {
      c.add(n);
      c.run();
    }
  }
  LockId req(NodeId n, const char* name, Mode m, uint32_t flags = 0) {
    LockId id = 0;
    EXPECT_EQ(c.ls(n).request(name, m, flags, 100 + n, &id), Status::kOk);
    c.run();
    return id;
  }
  Status status(NodeId n, LockId id) {
    auto* d = c.rec(n).last(id);
    return d ? d->status : Status::kBusy;  // kBusy: no completion yet
  }
  InprocCluster c;
};

TEST(Modes, CompatibilityMatrixIsTheStandardOne) {
  EXPECT_TRUE(compatible(Mode::PR, Mode::PR));
  EXPECT_FALSE(compatible(Mode::PR, Mode::CW));
  EXPECT_TRUE(compatible(Mode::CW, Mode::CW));
  EXPECT_TRUE(compatible(Mode::CR, Mode::PW));
  EXPECT_FALSE(compatible(Mode::CR, Mode::EX));
  EXPECT_TRUE(compatible(Mode::NL, Mode::EX));
  EXPECT_FALSE(compatible(Mode::PW, Mode::PW));
  for (int a = 0; a < kModeCount; ++a)
    for (int b = 0; b < kModeCount; ++b) EXPECT_EQ(compatible(Mode(a), Mode(b)), compatible(Mode(b), Mode(a)));
  EXPECT_TRUE(is_down_conversion(Mode::EX, Mode::PR));
  EXPECT_TRUE(is_down_conversion(Mode::PW, Mode::CW));
  EXPECT_FALSE(is_down_conversion(Mode::PR, Mode::CW));
  EXPECT_FALSE(is_down_conversion(Mode::CW, Mode::PR));
}

TEST_F(Semantics, AllNodesJoinAndAgree) {
  for (NodeId n : {1, 2, 3}) {
    EXPECT_EQ(c.ls(n).state(), LockSpaceImpl::State::kReady);
    EXPECT_TRUE(c.ls(n).quorate());
    EXPECT_EQ(c.ls(n).members(), (std::vector<NodeId>{1, 2, 3}));
  }
  req(1, "a", Mode::EX);
  EXPECT_EQ(c.ls(2).table_state(), c.ls(1).table_state());
  EXPECT_EQ(c.ls(3).table_state(), c.ls(1).table_state());
}

TEST_F(Semantics, SharedModesCoexistExclusiveWaits) {
  LockId a = req(1, "r", Mode::PR), b = req(2, "r", Mode::PR), x = req(3, "r", Mode::EX);
  EXPECT_EQ(status(1, a), Status::kOk);
  EXPECT_EQ(status(2, b), Status::kOk);
  EXPECT_EQ(status(3, x), Status::kBusy);
  // Both holders are told, once, that EX waits.
  ASSERT_EQ(c.rec(1).basts.size(), 1u);
  EXPECT_EQ(c.rec(1).basts[0], std::make_pair(a, Mode::EX));
  ASSERT_EQ(c.rec(2).basts.size(), 1u);
  EXPECT_EQ(c.ls(1).unlock(a), Status::kOk);
  c.run();
  EXPECT_EQ(status(3, x), Status::kBusy);
  EXPECT_EQ(c.ls(2).unlock(b), Status::kOk);
  c.run();
  EXPECT_EQ(status(3, x), Status::kOk);
}

TEST_F(Semantics, NewRequestsAreFifo) {
  LockId x = req(1, "r", Mode::EX);
  LockId w1 = req(2, "r", Mode::EX);
  LockId w2 = req(3, "r", Mode::PR);
  LockId w3 = req(2, "r", Mode::PR);
  EXPECT_EQ(status(1, x), Status::kOk);
  EXPECT_EQ(c.ls(1).unlock(x), Status::kOk);
  c.run();
  EXPECT_EQ(status(2, w1), Status::kOk);
  EXPECT_EQ(status(3, w2), Status::kBusy);  // compatible with nothing granted, but after w1
  EXPECT_EQ(status(2, w3), Status::kBusy);
  EXPECT_EQ(c.ls(2).unlock(w1), Status::kOk);
  c.run();
  EXPECT_EQ(status(3, w2), Status::kOk);
  EXPECT_EQ(status(2, w3), Status::kOk);
}

TEST_F(Semantics, ConversionGoesAheadOfWaitingNewRequests) {
  LockId a = req(1, "r", Mode::PR), b = req(2, "r", Mode::PR);
  LockId w = req(3, "r", Mode::EX);  // waits
  ASSERT_EQ(c.ls(1).convert(a, Mode::PW, 0), Status::kOk);
  c.run();
  EXPECT_EQ(status(1, a), Status::kOk) << "the first request's grant";
  EXPECT_EQ(c.rec(1).done.size(), 1u) << "PW conflicts with b's PR: the conversion waits";
  EXPECT_EQ(c.ls(2).unlock(b), Status::kOk);
  c.run();
  ASSERT_EQ(c.rec(1).done.size(), 2u);
  EXPECT_EQ(c.rec(1).done.back().mode, Mode::PW);
  EXPECT_EQ(status(3, w), Status::kBusy) << "the conversion was granted ahead of the EX";
}

TEST_F(Semantics, CompatibleUpConversionIsGrantedAtOnce) {
  LockId a = req(1, "r", Mode::CR);
  req(2, "r", Mode::CR);
  ASSERT_EQ(c.ls(1).convert(a, Mode::PW, 0), Status::kOk);
  c.run();
  EXPECT_EQ(c.rec(1).done.back().mode, Mode::PW);
  EXPECT_EQ(c.rec(1).done.back().status, Status::kOk);
}

TEST_F(Semantics, ConversionDeadlockFailsTheLaterConversion) {
  LockId a = req(1, "r", Mode::PR), b = req(2, "r", Mode::PR);
  ASSERT_EQ(c.ls(1).convert(a, Mode::EX, 0), Status::kOk);
  c.run();
  ASSERT_EQ(c.ls(2).convert(b, Mode::EX, 0), Status::kOk);
  c.run();
  EXPECT_EQ(status(2, b), Status::kDeadlock);
  EXPECT_EQ(c.rec(2).done.back().mode, Mode::PR) << "the victim keeps its granted mode";
  EXPECT_EQ(c.rec(1).done.size(), 1u) << "the first conversion still waits";
  // The victim gives way (it was told by a blocking callback).
  EXPECT_EQ(c.ls(2).unlock(b), Status::kOk);
  c.run();
  EXPECT_EQ(c.rec(1).done.back().mode, Mode::EX);
  std::string why;
  EXPECT_TRUE(c.ls(3).check(&why)) << why;
}

TEST_F(Semantics, NoQueueFailsInsteadOfWaiting) {
  req(1, "r", Mode::EX);
  LockId t = req(2, "r", Mode::PR, kNoQueue);
  EXPECT_EQ(status(2, t), Status::kAgain);
  LockId u = req(2, "s", Mode::PR, kNoQueue);
  EXPECT_EQ(status(2, u), Status::kOk);
  EXPECT_EQ(c.ls(2).unlock(t), Status::kNotFound) << "a failed NOQUEUE request leaves no lock";
}

TEST_F(Semantics, NoQueueBastTellsTheHoldersInTheWayOnce) {
  LockId a = req(1, "r", Mode::PR), b = req(3, "r", Mode::PR);
  LockId t = req(2, "r", Mode::EX, kNoQueue);
  EXPECT_EQ(status(2, t), Status::kAgain);
  EXPECT_TRUE(c.rec(1).basts.empty()) << "a plain NOQUEUE refusal tells nobody";
  t = req(2, "r", Mode::EX, kNoQueue | kNoQueueBast);
  EXPECT_EQ(status(2, t), Status::kAgain);
  ASSERT_EQ(c.rec(1).basts.size(), 1u);
  EXPECT_EQ(c.rec(1).basts[0], std::make_pair(a, Mode::EX));
  ASSERT_EQ(c.rec(3).basts.size(), 1u);
  EXPECT_EQ(c.rec(3).basts[0], std::make_pair(b, Mode::EX));
  // A conversion refused the same way tells the others, not itself.
  LockId p = req(2, "r", Mode::PR);
  ASSERT_EQ(c.ls(2).convert(p, Mode::EX, kNoQueue | kNoQueueBast), Status::kOk);
  c.run();
  EXPECT_EQ(status(2, p), Status::kAgain);
  EXPECT_EQ(c.rec(1).basts.size(), 2u);
  EXPECT_TRUE(c.rec(2).basts.empty());
  std::string why;
  EXPECT_TRUE(c.ls(3).check(&why)) << why;
}

// The counters behind `lunfs locks --stats`: one message per lock operation, on the
// sender as sent and on every other node as received; grants and blocking callbacks cost
// none, and are counted where they are told.
TEST_F(Semantics, StatsCountOneMessagePerOperationAndTheCallbacksWhereTheyAreTold) {
  const LockSpaceStats before1 = c.ls(1).stats(), before2 = c.ls(2).stats(), before3 = c.ls(3).stats();
  const size_t request = static_cast<size_t>(OpType::kRequest), unlock = static_cast<size_t>(OpType::kUnlock);
  LockId x = req(1, "r", Mode::EX);
  LockId w = req(2, "r", Mode::PR);  // waits: node 1 gets one blocking callback
  ASSERT_EQ(c.ls(1).unlock(x), Status::kOk);
  c.run();
  EXPECT_EQ(status(2, w), Status::kOk);
  const LockSpaceStats s1 = c.ls(1).stats(), s2 = c.ls(2).stats(), s3 = c.ls(3).stats();
  EXPECT_EQ(s1.sent[request] - before1.sent[request], 1u);
  EXPECT_EQ(s1.sent[unlock] - before1.sent[unlock], 1u);
  EXPECT_EQ(s1.received[request] - before1.received[request], 1u) << "node 2's request";
  EXPECT_EQ(s1.blocking_callbacks - before1.blocking_callbacks, 1u);
  EXPECT_EQ(s2.sent[request] - before2.sent[request], 1u);
  EXPECT_EQ(s2.received[unlock] - before2.received[unlock], 1u);
  EXPECT_EQ(s2.completions - before2.completions, 1u) << "the grant, after the unlock";
  EXPECT_EQ(s2.blocking_callbacks, before2.blocking_callbacks);
  EXPECT_EQ(s3.received[request] - before3.received[request], 2u) << "a bystander receives every message";
  EXPECT_EQ(s3.sent[request], before3.sent[request]);
  const std::string text = s1.to_string();
  EXPECT_NE(text.find("sent.request " + std::to_string(s1.sent[request]) + "\n"), std::string::npos) << text;
  EXPECT_NE(text.find("blocking_callbacks " + std::to_string(s1.blocking_callbacks) + "\n"), std::string::npos) << text;
}

TEST_F(Semantics, CancelWaitingRequestAndConversion) {
  LockId x = req(1, "r", Mode::EX);
  LockId w = req(2, "r", Mode::PR);
  ASSERT_EQ(c.ls(2).cancel(w), Status::kOk);
  c.run();
  EXPECT_EQ(status(2, w), Status::kCancelled);
  LockId p = req(3, "s", Mode::PR);
  req(1, "s", Mode::PR);
  ASSERT_EQ(c.ls(3).convert(p, Mode::EX, 0), Status::kOk);
  c.run();
  ASSERT_EQ(c.ls(3).cancel(p), Status::kOk);
  c.run();
  EXPECT_EQ(status(3, p), Status::kCancelled);
  EXPECT_EQ(c.rec(3).done.back().mode, Mode::PR);
  EXPECT_EQ(c.ls(1).cancel(x), Status::kNotFound) << "nothing to cancel on a granted lock";
}

TEST_F(Semantics, LvbWrittenFromExclusiveAndReadOnGrant) {
  req(3, "r", Mode::NL);  // an unused resource is forgotten with its LVB; NL keeps it
  LockId x = req(1, "r", Mode::EX);
  EXPECT_FALSE(c.rec(1).last(x)->lvb.valid) << "never written";
  LvbBytes v{};
  v[0] = 42, v[31] = 7;
  ASSERT_EQ(c.ls(1).unlock(x, &v), Status::kOk);
  c.run();
  LockId r = req(2, "r", Mode::PR);
  ASSERT_TRUE(c.rec(2).last(r)->lvb.valid);
  EXPECT_EQ(c.rec(2).last(r)->lvb.bytes, v);
  // A PR holder cannot write it.
  LvbBytes w{};
  w[0] = 1;
  EXPECT_EQ(c.ls(2).convert(r, Mode::NL, 0, &w), Status::kOk);
  c.run();
  LockId q = req(3, "r", Mode::PR);
  EXPECT_EQ(c.rec(3).last(q)->lvb.bytes, v);
  // Down-conversion from PW writes it.
  EXPECT_EQ(c.ls(2).unlock(r), Status::kOk);
  EXPECT_EQ(c.ls(3).unlock(q), Status::kOk);
  c.run();
  LockId pw = req(1, "r", Mode::PW);
  EXPECT_EQ(c.ls(1).convert(pw, Mode::CR, 0, &w), Status::kOk);
  c.run();
  LockId q2 = req(3, "r", Mode::PR);
  EXPECT_EQ(c.rec(3).last(q2)->lvb.bytes, w);
}

TEST_F(Semantics, LvbInvalidAfterExclusiveHolderDies) {
  LockId nl = req(2, "r", Mode::NL);  // keeps the resource (and its LVB) alive
  LockId x = req(1, "r", Mode::EX);
  LvbBytes v{};
  v[0] = 9;
  EXPECT_EQ(c.ls(1).convert(x, Mode::PW, 0), Status::kOk);
  c.run();
  EXPECT_EQ(c.ls(1).unlock(x, &v), Status::kOk);
  c.run();
  req(1, "r", Mode::EX);  // dies holding EX without writing the LVB
  c.bus().crash(1);
  c.remove(1);
  c.run();
  EXPECT_EQ(c.ls(2).recovery_done(c.rec(2).departure_of(1)), Status::kOk);
  c.run();
  EXPECT_EQ(c.ls(2).convert(nl, Mode::PR, 0), Status::kOk);
  c.run();
  EXPECT_FALSE(c.rec(2).last(nl)->lvb.valid);
}

TEST_F(Semantics, DeadNodesLocksStayUntilRecoveryDone) {
  req(3, "journal3", Mode::EX);
  req(3, "inode", Mode::PR);
  LockId w = req(1, "journal3", Mode::EX);
  c.bus().crash(3);
  c.remove(3);
  c.run();
  for (NodeId n : {1, 2}) {
    ASSERT_EQ(c.rec(n).recoveries.size(), 1u);
    EXPECT_EQ(c.rec(n).recoveries[0].first.node, 3u);
    auto& held = c.rec(n).recoveries[0].second;
    ASSERT_EQ(held.size(), 2u);
    EXPECT_EQ(held[0].name, "journal3");
    EXPECT_EQ(held[0].mode, Mode::EX);
    EXPECT_EQ(held[1].name, "inode");
  }
  EXPECT_EQ(status(1, w), Status::kBusy) << "still held by the dead node";
  EXPECT_EQ(c.ls(2).recovery_done(c.rec(2).departure_of(3)), Status::kOk);
  c.run();
  EXPECT_EQ(status(1, w), Status::kOk);
  // The hook came before the grant it allowed.
  auto& ev = c.rec(1).events;
  auto rec = std::find(ev.begin(), ev.end(), "recover 3");
  auto grant = std::find(ev.begin(), ev.end(), "done " + std::to_string(w) + " ok");
  EXPECT_LT(rec, grant);
}

TEST_F(Semantics, NoGrantsWithoutQuorum) {
  c.bus().crash(2);
  c.remove(2);
  c.run();
  EXPECT_TRUE(c.ls(1).quorate()) << "2 of 3";
  c.bus().crash(3);
  c.remove(3);
  c.run();
  EXPECT_FALSE(c.ls(1).quorate());
  LockId w = req(1, "fresh", Mode::PR);
  EXPECT_EQ(status(1, w), Status::kBusy);
  LockId t = req(1, "other", Mode::PR, kNoQueue);
  EXPECT_EQ(status(1, t), Status::kNoQuorum);
  EXPECT_EQ(c.rec(1).quorum_changes.back(), false);
}

TEST_F(Semantics, QuorumReturnsWithAJoinGrantsWaiters) {
  c.bus().crash(3);
  c.remove(3);
  c.run();
  c.bus().partition({2});
  c.run();
  EXPECT_FALSE(c.ls(1).quorate());
  EXPECT_FALSE(c.ls(2).quorate());
  LockId w = req(1, "r", Mode::PR);
  EXPECT_EQ(status(1, w), Status::kBusy);
  c.bus().heal();  // both sides lost quorum after having it: both are stale now
  c.run();
  EXPECT_EQ(c.ls(1).state(), LockSpaceImpl::State::kFailed);
  EXPECT_EQ(c.ls(1).failure(), Status::kStale);
  EXPECT_EQ(status(1, w), Status::kStale) << "pending requests fail, never hang";
}

TEST_F(Semantics, PartitionedMinorityGoesStaleMajorityContinues) {
  req(3, "r", Mode::EX);
  c.bus().partition({3});
  c.run();
  EXPECT_FALSE(c.ls(3).quorate());
  EXPECT_TRUE(c.ls(1).quorate());
  LockId m = req(3, "s", Mode::PR);
  EXPECT_EQ(status(3, m), Status::kBusy) << "minority: no grants";
  LockId w = req(1, "r", Mode::EX);
  EXPECT_EQ(status(1, w), Status::kBusy);
  EXPECT_EQ(c.ls(1).recovery_done(c.rec(1).departure_of(3)), Status::kOk);  // after fencing node 3, in real life
  c.run();
  EXPECT_EQ(status(1, w), Status::kOk);
  c.bus().heal();
  c.run();
  EXPECT_EQ(c.ls(3).failure(), Status::kStale);
  EXPECT_EQ(c.ls(1).state(), LockSpaceImpl::State::kReady);
}

TEST_F(Semantics, JoinerGetsTheTableAndTakesPart) {
  LockId x = req(1, "r", Mode::EX);
  c.add(4);
  // Let the join interleave with traffic: order a request before the snapshot arrives.
  LockId y = 0;
  EXPECT_EQ(c.ls(2).request("r", Mode::PR, 0, 0, &y), Status::kOk);
  c.run();
  ASSERT_EQ(c.ls(4).state(), LockSpaceImpl::State::kReady);
  EXPECT_EQ(c.ls(4).table_state(), c.ls(1).table_state());
  EXPECT_EQ(c.ls(1).unlock(x), Status::kOk);
  c.run();
  EXPECT_EQ(status(2, y), Status::kOk);
  LockId z = req(4, "r", Mode::PR);
  EXPECT_EQ(status(4, z), Status::kOk);
  EXPECT_EQ(c.ls(4).table_state(), c.ls(3).table_state());
}

TEST_F(Semantics, UnlockOfWaitingRequestCancelsIt) {
  req(1, "r", Mode::EX);
  LockId w = req(2, "r", Mode::EX);
  ASSERT_EQ(c.ls(2).unlock(w), Status::kOk);
  c.run();
  EXPECT_EQ(status(2, w), Status::kCancelled);
  EXPECT_EQ(c.ls(2).unlock(w), Status::kNotFound);
}

TEST_F(Semantics, BusyWhileAnOperationIsInFlight) {
  LockId id;
  ASSERT_EQ(c.ls(1).request("r", Mode::PR, 0, 0, &id), Status::kOk);
  EXPECT_EQ(c.ls(1).convert(id, Mode::EX, 0), Status::kBusy);
  c.run();
  EXPECT_EQ(c.ls(1).convert(id, Mode::EX, 0), Status::kOk);
}

TEST(Wire, GarbageIsRejectedNotTrusted) {
  std::mt19937_64 rng(1);
  Op op{.type = OpType::kSnapshot, .targets = {{1, 2}}, .blob = "xyz"};
  std::string good = encode(op);
  ASSERT_TRUE(decode(good));
  for (int i = 0; i < 20000; ++i) {
    std::string b = good;
    b[rng() % b.size()] ^= char(1 + rng() % 255);
    if (rng() % 2) b.resize(rng() % b.size());
    decode(b);  // must not crash (ASan checks the reads)
  }
  LockTable t(1);
  for (int i = 0; i < 20000; ++i) {
    std::string b(rng() % 64, '\0');
    for (auto& ch : b) ch = char(rng());
    t.decode(b);
  }
}

}  // namespace
// A node that dies, is recovered, and joins again starts its lock ids from 1 again: every
// replica must take its new locks as new, whatever its dead incarnation's ids were.
TEST(Rejoin, ARecoveredNodeThatJoinsAgainHasItsNewLocksInEveryReplica) {
  InprocCluster c(5);
  for (NodeId n : {1, 2, 3, 4, 5}) {
    c.add(n);
    c.run();
  }
  auto req = [&](NodeId n, const char* name, Mode m, uint32_t flags = 0) {
    LockId id = 0;
    EXPECT_EQ(c.ls(n).request(name, m, flags, 100 + n, &id), Status::kOk);
    c.run();
    return id;
  };
  req(1, "slot0", Mode::EX, kNoQueue);
  req(2, "slot0", Mode::EX, kNoQueue);  // refused: node 1 has it
  req(2, "slot1", Mode::EX, kNoQueue);
  req(2, "inode", Mode::EX);
  for (NodeId n : {1, 2}) {
    c.bus().crash(n);
    c.remove(n);
  }
  c.run();
  EXPECT_EQ(c.ls(3).recovery_done(c.rec(3).departure_of(1)), Status::kOk);
  EXPECT_EQ(c.ls(3).recovery_done(c.rec(3).departure_of(2)), Status::kOk);
  c.run();
  for (NodeId n : {1, 2}) {
    c.add(n);
    c.run();
  }
  req(1, "slot0", Mode::EX, kNoQueue);
  req(2, "slot0", Mode::EX, kNoQueue);
  LockId s = req(2, "slot1", Mode::EX, kNoQueue);
  ASSERT_EQ(c.rec(2).last(s)->status, Status::kOk);
  for (NodeId n : {1, 3, 4, 5}) {
    const std::string dump = c.ls(n).dump();
    EXPECT_NE(dump.find("granted node 2 id " + std::to_string(s) + " EX"), std::string::npos)
        << "node " << n << "'s replica:\n" << dump;
  }
}

// Nodes 1-3 join; node 1 takes slot0 EX and inode PR and dies holding them.
static void node_1_dies_holding_slot0_and_an_inode(InprocCluster& c) {
  for (NodeId n : {1, 2, 3}) {
    c.add(n);
    c.run();
  }
  LockId id = 0;
  ASSERT_EQ(c.ls(1).request("slot0", Mode::EX, kNoQueue, 1, &id), Status::kOk);
  ASSERT_EQ(c.ls(1).request("inode", Mode::PR, 0, 2, &id), Status::kOk);
  c.run();
  c.bus().crash(1);
  c.remove(1);
  c.run();
}

// A node restarted before its first departure was recovered can depart again, from
// another slot. Each departure keeps its own locks until it is recovered itself: the
// cluster checker found the second departure's recovery_done (a clean one: it held only an
// NL lock) releasing the first's locks too, whose journal nobody had replayed. A joiner is
// told of both, each with its own locks.
TEST(Rejoin, EachDepartureOfANodeIsRecoveredOnItsOwn) {
  InprocCluster c(3);
  ASSERT_NO_FATAL_FAILURE(node_1_dies_holding_slot0_and_an_inode(c));
  LockId id = 0;
  c.add(1);
  c.run();
  ASSERT_EQ(c.ls(1).request("slot1", Mode::NL, kNoQueue, 3, &id), Status::kOk);
  c.run();
  c.bus().crash(1);
  c.remove(1);
  c.run();
  ASSERT_EQ(c.rec(2).recoveries.size(), 2u);
  const Departure first = c.rec(2).recoveries[0].first, second = c.rec(2).recoveries[1].first;
  EXPECT_EQ(first.node, 1u);
  EXPECT_EQ(second.node, 1u);
  EXPECT_NE(first, second);
  ASSERT_EQ(c.rec(2).recoveries[0].second.size(), 2u);
  ASSERT_EQ(c.rec(2).recoveries[1].second.size(), 1u);
  EXPECT_EQ(c.rec(2).recoveries[1].second[0].name, "slot1");

  ASSERT_EQ(c.ls(2).recovery_done(second), Status::kOk);
  c.run();
  for (NodeId n : {2, 3}) {
    const std::string dump = c.ls(n).dump();
    EXPECT_NE(dump.find("\"slot0\""), std::string::npos) << "node " << n << ": the first departure's locks went:\n" << dump;
    EXPECT_EQ(dump.find("\"slot1\""), std::string::npos) << "node " << n << ":\n" << dump;
  }
  ASSERT_EQ(c.ls(3).request("slot0", Mode::EX, kNoQueue, 4, &id), Status::kOk);
  c.run();
  ASSERT_NE(c.rec(3).last(id), nullptr);
  EXPECT_NE(c.rec(3).last(id)->status, Status::kOk) << "slot0 is still held for the first departure";

  c.add(4);  // a joiner is told of the departure still pending, with its own locks only
  c.run();
  ASSERT_EQ(c.rec(4).recoveries.size(), 1u);
  EXPECT_EQ(c.rec(4).recoveries[0].first, first);
  EXPECT_EQ(c.rec(4).recoveries[0].second.size(), 2u);

  ASSERT_EQ(c.ls(4).recovery_done(first), Status::kOk);
  c.run();
  for (NodeId n : {2, 3, 4}) {
    const std::string dump = c.ls(n).dump();
    EXPECT_EQ(dump.find("\"slot0\""), std::string::npos) << "node " << n << ":\n" << dump;
    EXPECT_EQ(dump.find("pending-recovery 1"), std::string::npos) << "node " << n << ":\n" << dump;
  }
}

// A node that joins while others wait for recovery is told of each, with the locks it
// left, as if it had seen it leave: it may be, or become, the member that recovers them —
// even of its own earlier incarnation, when it restarted before that was recovered (found
// by the cluster checker: the restarted node became the lowest member, knew of nothing to
// recover, and the dead incarnation's locks stayed held for ever).
TEST(Rejoin, AJoinerIsToldOfTheRecoveriesStillPendingItsOwnIncluded) {
  InprocCluster c(3);
  ASSERT_NO_FATAL_FAILURE(node_1_dies_holding_slot0_and_an_inode(c));
  LockId id = 0;
  ASSERT_EQ(c.rec(2).recoveries.size(), 1u);
  c.add(1);  // back before anybody sent recovery_done(1)
  c.run();
  ASSERT_EQ(c.ls(1).state(), LockSpaceImpl::State::kReady);
  ASSERT_EQ(c.rec(1).recoveries.size(), 1u) << "the new incarnation was not told its old one needs recovery";
  EXPECT_EQ(c.rec(1).recoveries[0].first.node, 1u);
  ASSERT_EQ(c.rec(1).recoveries[0].second.size(), 2u);
  EXPECT_EQ(c.rec(1).recoveries[0].second[0].name, "slot0");
  EXPECT_EQ(c.rec(1).recoveries[0].second[0].mode, Mode::EX);
  // Its new locks are its own; recovering the old incarnation releases only the old ones.
  ASSERT_EQ(c.ls(1).request("slot1", Mode::EX, kNoQueue, 3, &id), Status::kOk);
  c.run();
  ASSERT_EQ(c.ls(1).recovery_done(c.rec(1).departure_of(1)), Status::kOk);
  c.run();
  for (NodeId n : {1, 2, 3}) {
    const std::string dump = c.ls(n).dump();
    EXPECT_EQ(dump.find("\"slot0\""), std::string::npos) << "node " << n << ":\n" << dump;
    EXPECT_NE(dump.find("\"slot1\""), std::string::npos) << "node " << n << ":\n" << dump;
  }
}

// A member whose table differs from ours at a checkpoint is reported: here a member that is
// not a lock space at all claims another table for every recent checkpoint.
struct Silent : TransportListener {
  void on_deliver(NodeId, std::string_view) override {}
  void on_membership(const Membership&) override {}
  void on_quorum(bool) override {}
  void on_transport_failed(Status) override {}
};

TEST(Divergence, AReplicaThatDiffersAtACheckpointIsCounted) {
  InprocCluster c(3);
  for (NodeId n : {1, 2, 3}) {
    c.add(n);
    c.run();
  }
  LockId id = 0;
  ASSERT_EQ(c.ls(1).request("r", Mode::EX, 0, 1, &id), Status::kOk);
  c.run();
  for (NodeId n : {1, 2, 3}) ASSERT_EQ(c.ls(n).stats().divergences, 0u) << "node " << n << ": true replicas agree";
  Silent silent;
  std::unique_ptr<Transport> rogue = c.bus().endpoint(9);
  ASSERT_EQ(rogue->start(&silent, std::chrono::seconds(1)), Status::kOk);
  c.run();
  const std::vector<NodeId> members{1, 2, 3, 9};  // the digest names the membership it is of
  const uint32_t members_digest = XXH32(members.data(), members.size() * sizeof(NodeId), 0);
  for (uint64_t checkpoint = 0; checkpoint < 16; ++checkpoint)
    ASSERT_EQ(rogue->send(encode(Op{.type = OpType::kDigest, .seq = checkpoint, .flags = members_digest, .cookie = 0x5eed})),
              Status::kOk);
  c.run();
  for (NodeId n : {1, 2, 3}) {
    const LockSpaceStats s = c.ls(n).stats();
    EXPECT_EQ(s.divergences, 1u) << "node " << n << ": one checkpoint (node 9 joining) had node 9 in it";
    EXPECT_NE(s.to_string().find("divergences " + std::to_string(s.divergences) + "\n"), std::string::npos);
  }
}

}  // namespace lunfs::dlm::testing

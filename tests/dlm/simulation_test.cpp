// Randomized simulation of a lock space on the in-process bus: for each seed, nodes
// request, convert, unlock and cancel locks (and byte-range/flock locks: lock, unlock, wait,
// get, cancel, release, whose table is part of the compared state) while the scheduler reorders and delays
// messages, nodes crash, join, get partitioned and healed. Checked after every step:
//  - safety on every node's table (no incompatible granted modes), after every delivery;
//  - agreement: every node that applied a given event has the same table afterwards;
//  - global safety of what the applications believe they hold, across all nodes;
// and at the end of each seed, once chaos stops and holders answer blocking callbacks:
//  - liveness: every request and conversion completed; all tables equal.
// LUNFS_DLM_SIM_SEEDS (default 1000) and LUNFS_DLM_SIM_STEPS (default 400) make a soak.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <map>
#include <set>

#include "tests/dlm/cluster_fixture.h"

namespace lunfs::dlm::testing {
namespace {

uint64_t env_or(const char* name, uint64_t dflt) {
  const char* v = std::getenv(name);
  return v ? std::strtoull(v, nullptr, 10) : dflt;
}

class Simulation;

// What the seeds exercised, summed: the test insists every path was taken.
struct Coverage {
  std::map<Status, uint64_t> completions;
  std::map<int, uint64_t> plocks;  // byte-range lock results by errno
  uint64_t crashes = 0, starts = 0, partitions = 0, recoveries = 0, stale = 0;
};
Coverage coverage;

// What one node's application believes about its locks.
struct AppLock {
  enum State { kRequesting, kHeld, kConverting } state;
  std::string res;
  Mode held;  // mode it may rely on (the stronger one during a down-conversion)
};

struct App : LockClient {
  Simulation* sim;
  NodeId node;
  uint64_t incarnation;
  std::map<LockId, AppLock> locks;
  std::set<LockId> basted;  // holders told that someone waits
  std::set<uint64_t> plock_waits;  // byte-range lock requests sent and not decided
  bool failed_now = false;

  void completion(uint64_t, LockId id, Status st, Mode mode, const Lvb&) override;
  void blocking(uint64_t, LockId id, Mode) override { basted.insert(id); }
  void recover(const Departure& dead, const std::vector<HeldLock>&) override;
  void failed(Status why) override {
    failed_now = true;
    if (why == Status::kStale) ++coverage.stale;
  }
};

class Simulation {
 public:
  explicit Simulation(uint64_t seed) : rng_(seed), bus_(kExpected) {}
  ~Simulation() { nodes_.clear(); }

  void run(uint64_t steps) {
    for (NodeId n = 1; n <= 4; ++n) start(n);
    for (uint64_t i = 0; i < steps && !::testing::Test::HasFailure(); ++i) chaos_step();
    drain();
  }

  // Called by App.
  void note_recovery(const Departure& dead) { recoveries_.insert({dead, incarnation_[dead.node]}); }

 private:
  // As with votequorum, expected votes cover every node that may ever be up: two
  // partitions can then never both be quorate.
  static constexpr NodeId kMaxNode = 5;
  static constexpr uint32_t kExpected = kMaxNode;
  static constexpr const char* kResources[] = {"a", "b", "c", "d"};

  struct Node {
    std::unique_ptr<App> app;
    std::unique_ptr<LockSpaceImpl> ls;
  };

  uint32_t pick(uint32_t n) { return std::uniform_int_distribution<uint32_t>(0, n - 1)(rng_); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }

  void start(NodeId n) {
    auto& node = nodes_[n];
    node.app = std::make_unique<App>();
    node.app->sim = this;
    node.app->node = n;
    node.app->incarnation = ++incarnation_[n];
    node.ls = std::make_unique<LockSpaceImpl>(bus_.endpoint(n), node.app.get());
    EXPECT_EQ(node.ls->start(), Status::kOk);
  }

  void stop(NodeId n) {
    bus_.crash(n);
    nodes_.erase(n);
  }

  std::vector<NodeId> ready() {
    std::vector<NodeId> out;
    for (auto& [id, n] : nodes_)
      if (n.ls->state() == LockSpaceImpl::State::kReady) out.push_back(id);
    return out;
  }

  void trace(const std::string& what) {
    if (tracing_) std::fprintf(stderr, "sim: %s\n", what.c_str());
  }

  void chaos_step() {
    uint32_t r = pick(1000);
    if (r < 550) {
      deliver_step();
    } else if (r < 920) {
      app_step();
    } else if (r < 925) {
      if (nodes_.size() > 1) {
        auto it = std::next(nodes_.begin(), pick(nodes_.size()));
        trace("crash " + std::to_string(it->first));
        ++coverage.crashes;
        stop(it->first);
      }
    } else if (r < 940) {
      for (NodeId n = 1; n <= kMaxNode; ++n)
        if (!nodes_.count(n)) {
          trace("start " + std::to_string(n));
          ++coverage.starts;
          start(n);
          break;
        }
    } else if (r < 944) {
      std::vector<NodeId> side;
      for (auto& [id, n] : nodes_)
        if (chance(0.4)) side.push_back(id);
      std::string t = "partition";
      for (NodeId n : side) t += ' ' + std::to_string(n);
      trace(t);
      ++coverage.partitions;
      bus_.partition(side);
    } else if (r < 955) {
      trace("heal");
      bus_.heal();
    } else if (r < 990) {
      recovery_step();
    } else {
      reap_failed();
    }
    check_beliefs();
  }

  void deliver_step() {
    auto s = bus_.senders(), r = bus_.receivers();
    if (s.empty() && r.empty()) return;
    size_t i = pick(uint32_t(s.size() + r.size()));
    if (i < s.size()) return (void)bus_.sequence(s[i]);
    NodeId n = r[i - s.size()];
    uint64_t ev = bus_.deliver(n);
    if (tracing_ && nodes_.count(n))
      trace("deliver event " + std::to_string(ev) + " to " + std::to_string(n) + "\n" +
            nodes_.at(n).ls->dump());
    auto it = nodes_.find(n);
    if (ev == 0 || it == nodes_.end()) return;
    LockSpaceImpl& ls = *it->second.ls;
    if (ls.state() != LockSpaceImpl::State::kReady) return;
    std::string why;
    ASSERT_TRUE(ls.check(&why)) << "node " << n << " after event " << ev << ": " << why << "\n"
                                << ls.dump();
    size_t h = std::hash<std::string>()(ls.table_state());
    auto [seen, fresh] = after_event_.try_emplace(ev, h, n);
    ASSERT_TRUE(fresh || seen->second.first == h)
        << "node " << n << " and node " << seen->second.second << " disagree after event "
        << ev << "\n"
        << ls.dump() << "\n"
        << nodes_.at(seen->second.second).ls->dump();
  }

  void app_step() {
    auto rs = ready();
    if (rs.empty()) return;
    NodeId n = rs[pick(uint32_t(rs.size()))];
    App& app = *nodes_[n].app;
    LockSpaceImpl& ls = *nodes_[n].ls;
    // Answer a blocking callback now and then (always, once the chaos stops).
    if (!app.basted.empty() && chance(0.5)) {
      // A blocking callback comes once per grant: remember it while a conversion of the
      // lock is in flight (a refused conversion brings no new one).
      LockId id = *std::next(app.basted.begin(), pick(uint32_t(app.basted.size())));
      auto it = app.locks.find(id);
      if (it == app.locks.end()) {
        app.basted.erase(id);
      } else if (it->second.state == AppLock::kHeld) {
        app.basted.erase(id);
        release(app, ls, id, chance(0.3));
      }
      return;
    }
    if (chance(0.3)) return plock_step(app, ls);
    uint32_t what = pick(10);
    if (what < 5 || app.locks.empty()) {
      LockId id;
      Mode m = Mode(pick(kModeCount));
      std::string res = kResources[pick(4)];
      uint32_t flags = chance(0.15) ? uint32_t(kNoQueue) : 0u;
      ASSERT_EQ(ls.request(res, m, flags, 0, &id), Status::kOk);
      app.locks[id] = {AppLock::kRequesting, res, Mode::NL};
      return;
    }
    auto it = std::next(app.locks.begin(), pick(uint32_t(app.locks.size())));
    LockId id = it->first;
    AppLock& l = it->second;
    if (l.state == AppLock::kHeld && what < 7) {
      // Upgrades to EX are common in file systems (and what makes conversion deadlocks).
      Mode m = chance(0.5) ? Mode::EX : Mode(pick(kModeCount));
      LvbBytes v{};
      v[0] = uint8_t(pick(256));
      ASSERT_EQ(ls.convert(id, m, chance(0.15) ? uint32_t(kNoQueue) : 0u, &v), Status::kOk);
      l.state = AppLock::kConverting;  // `held` stays the old mode until the completion
    } else if (l.state == AppLock::kHeld) {
      release(app, ls, id, false);
    } else if ((l.state == AppLock::kRequesting || l.state == AppLock::kConverting) && what < 8) {
      ASSERT_EQ(ls.cancel(id), Status::kOk);
    } else {
      ASSERT_EQ(ls.unlock(id), Status::kOk);
      app.locks.erase(it);  // its completion (kCancelled or a late grant) is ignored
    }
  }

  // A byte-range or flock lock operation of a few owners on two inodes.
  void plock_step(App& app, LockSpaceImpl& ls) {
    const uint32_t what = pick(10);
    if (what < 2 && !app.plock_waits.empty()) {
      const uint64_t req = *std::next(app.plock_waits.begin(), pick(uint32_t(app.plock_waits.size())));
      const Status st = ls.plock_cancel(req);
      ASSERT_TRUE(st == Status::kOk || st == Status::kNotFound) << status_name(st);
      return;
    }
    PlockOp op;
    op.ino = 1 + pick(2);
    op.owner = 1 + pick(3);
    op.cls = chance(0.2) ? PlockClass::kFlock : PlockClass::kPosix;
    // Few, small ranges: owners that hold one and wait for another make deadlocks.
    op.start = op.cls == PlockClass::kFlock ? 0 : pick(4);
    op.end = op.cls == PlockClass::kFlock || chance(0.1) ? kPlockEof : op.start + pick(2);
    if (what == 2) {
      op.cmd = PlockCmd::kRelease;
    } else if (what == 3) {
      op.cmd = PlockCmd::kGet;
      op.type = chance(0.5) ? PlockType::kWrite : PlockType::kRead;
    } else {
      op.type = PlockType(pick(3));
      op.wait = op.type != PlockType::kUnlock && chance(0.7);
    }
    uint64_t req = 0;
    ASSERT_EQ(ls.plock(op,
                       [&app](const PlockResult& r) {
                         ++coverage.plocks[r.err];
                         app.plock_waits.erase(r.req);
                       },
                       &req),
              Status::kOk);
    if (op.wait) app.plock_waits.insert(req);
  }

  void release(App& app, LockSpaceImpl& ls, LockId id, bool downconvert) {
    AppLock& l = app.locks.at(id);
    if (downconvert && l.held != Mode::NL) {
      ASSERT_EQ(ls.convert(id, Mode::NL, 0), Status::kOk);
      l.state = AppLock::kConverting;
      return;
    }
    LvbBytes v{};
    v[1] = 1;
    ASSERT_EQ(ls.unlock(id, &v), Status::kOk);
    app.locks.erase(id);  // no longer relied upon
  }

  // The file system recovered a dead node: fence it first if it still runs (partitioned
  // away), as the real recovery path must, then release its locks.
  void recovery_step() {
    if (recoveries_.empty()) return;
    auto [departure, inc] = *std::next(recoveries_.begin(), pick(uint32_t(recoveries_.size())));
    const NodeId dead = departure.node;
    std::vector<NodeId> quorate;
    for (NodeId n : ready())
      if (n != dead && nodes_[n].ls->quorate()) quorate.push_back(n);
    if (quorate.empty()) return;
    NodeId by = quorate[pick(uint32_t(quorate.size()))];
    // Done once a quorate table says so; until then keep asking (whoever asked before may
    // have died with its request unsent, as a recovering node can).
    if (!nodes_[by].ls->recovery_pending(departure)) return (void)recoveries_.erase({departure, inc});
    if (nodes_.count(dead) && nodes_[dead].app->incarnation == inc) stop(dead);
    trace("recovery_done " + std::to_string(dead) + " by " + std::to_string(by));
    ++coverage.recoveries;
    ASSERT_EQ(nodes_[by].ls->recovery_done(departure), Status::kOk);
  }

  void reap_failed() {
    std::vector<NodeId> gone;
    for (auto& [id, n] : nodes_)
      if (n.ls->state() == LockSpaceImpl::State::kFailed) gone.push_back(id);
    for (NodeId n : gone) {
      trace("reap failed " + std::to_string(n));
      stop(n);
    }
  }

  // No two incompatible modes relied upon at once anywhere in the cluster.
  void check_beliefs() {
    std::map<std::string, std::vector<std::pair<NodeId, Mode>>> held;
    for (auto& [id, n] : nodes_)
      for (auto& [lid, l] : n.app->locks)
        if (l.state == AppLock::kHeld || l.state == AppLock::kConverting)
          held[l.res].emplace_back(id, l.held);
    for (auto& [res, hs] : held)
      for (size_t i = 0; i < hs.size(); ++i)
        for (size_t j = i + 1; j < hs.size(); ++j)
          ASSERT_TRUE(compatible(hs[i].second, hs[j].second))
              << "resource " << res << ": node " << hs[i].first << " relies on "
              << mode_name(hs[i].second) << ", node " << hs[j].first << " on "
              << mode_name(hs[j].second);
  }

  void drain() {
    if (::testing::Test::HasFailure()) return;
    for (int round = 0; round < 50; ++round) {
      bus_.heal();
      for (int i = 0; i < 100000 && (!bus_.senders().empty() || !bus_.receivers().empty()); ++i) {
        deliver_step();
        if (::testing::Test::HasFailure()) return;
      }
      reap_failed();
      if (ready().size() < 3) {
        for (NodeId n = 1; n <= kMaxNode && nodes_.size() < 4; ++n)
          if (!nodes_.count(n)) start(n);
        continue;
      }
      for (size_t k = 0, n = recoveries_.size() * 4; k < n && !recoveries_.empty(); ++k)
        recovery_step();
      bool busy = false;
      for (NodeId n : ready()) {
        App& app = *nodes_[n].app;
        for (LockId id : std::set<LockId>(app.basted)) {
          auto it = app.locks.find(id);
          if (it != app.locks.end() && it->second.state != AppLock::kHeld) continue;
          if (it != app.locks.end()) release(app, *nodes_[n].ls, id, false);
          app.basted.erase(id);
        }
        for (auto& [id, l] : app.locks) busy |= l.state != AppLock::kHeld;
      }
      if (!busy && bus_.senders().empty() && bus_.receivers().empty() && recoveries_.empty() &&
          !nodes_.empty() && all_quorate())
        return final_checks();
    }
    std::string state = "recoveries pending " + std::to_string(recoveries_.size()) + "\n";
    for (auto& [id, n] : nodes_) {
      state += n.ls->dump();
      for (auto& [lid, l] : n.app->locks)
        state += "  app believes lock " + std::to_string(lid) + " state " +
                 std::to_string(int(l.state)) + "\n";
    }
    FAIL() << "requests still pending after the drain (liveness):\n" << state;
  }

  bool all_quorate() {
    for (auto& [id, n] : nodes_)
      if (n.ls->state() != LockSpaceImpl::State::kReady || !n.ls->quorate()) return false;
    return true;
  }

  void final_checks() {
    std::string first;
    for (auto& [id, n] : nodes_) {
      std::string s = n.ls->table_state();
      if (first.empty()) first = s;
      ASSERT_EQ(s, first) << "tables differ at rest";
      // The replicas never differed here, so their own digest check must not have said so.
      ASSERT_EQ(n.ls->stats().divergences, 0u) << "node " << id;
      for (auto& [lid, l] : n.app->locks)
        ASSERT_EQ(l.state, AppLock::kHeld) << "node " << id << " lock " << lid << " pending";
    }
  }

  bool tracing_ = std::getenv("LUNFS_DLM_SIM_TRACE") != nullptr;
  std::mt19937_64 rng_;
  Bus bus_;
  std::map<NodeId, Node> nodes_;
  std::map<NodeId, uint64_t> incarnation_;
  std::set<std::pair<Departure, uint64_t>> recoveries_;  // with the incarnation to fence
  std::map<uint64_t, std::pair<size_t, NodeId>> after_event_;
};

void App::completion(uint64_t, LockId id, Status st, Mode mode, const Lvb&) {
  ++coverage.completions[st];
  auto it = locks.find(id);
  if (it == locks.end()) return;  // released meanwhile
  AppLock& l = it->second;
  if (st == Status::kOk) {
    l.state = AppLock::kHeld;
    l.held = mode;
    basted.erase(id);
  } else if (l.state == AppLock::kRequesting || st == Status::kShutdown || st == Status::kStale) {
    locks.erase(it);
  } else {
    l.state = AppLock::kHeld;  // conversion refused: the old mode stays
  }
}

void App::recover(const Departure& dead, const std::vector<HeldLock>&) { sim->note_recovery(dead); }

TEST(Simulation, SafetyAndLivenessOverManySeeds) {
  uint64_t seeds = env_or("LUNFS_DLM_SIM_SEEDS", 1000);
  uint64_t steps = env_or("LUNFS_DLM_SIM_STEPS", 400);
  uint64_t first = env_or("LUNFS_DLM_SIM_FIRST_SEED", 1);
  for (uint64_t seed = first; seed < first + seeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Simulation(seed).run(steps);
    if (::testing::Test::HasFailure()) return;
  }
  if (seeds < 100) return;
  auto& c = coverage.completions;
  std::printf("[ coverage ] granted %lu, again %lu, no-quorum %lu, cancelled %lu, deadlock %lu, "
              "crashes %lu, joins %lu, partitions %lu, recoveries %lu, stale %lu\n",
              c[Status::kOk], c[Status::kAgain], c[Status::kNoQuorum], c[Status::kCancelled],
              c[Status::kDeadlock], coverage.crashes, coverage.starts, coverage.partitions,
              coverage.recoveries, coverage.stale);
  // Conversion deadlocks need two holders upgrading at once and stay rare here (a few per
  // thousand seeds); Semantics.ConversionDeadlockFailsTheLaterConversion pins them down.
  for (Status s : {Status::kOk, Status::kAgain, Status::kNoQuorum, Status::kCancelled})
    EXPECT_GT(c[s], 0u) << "no completion with status " << status_name(s);
  EXPECT_GT(coverage.crashes, 0u);
  EXPECT_GT(coverage.starts, 0u);
  EXPECT_GT(coverage.partitions, 0u);
  EXPECT_GT(coverage.recoveries, 0u);
  EXPECT_GT(coverage.stale, 0u);
  auto& p = coverage.plocks;
  std::printf("[ coverage ] plocks granted %lu, again %lu, deadlock %lu, interrupted %lu, no-quorum/failed %lu\n", p[0],
              p[EAGAIN], p[EDEADLK], p[EINTR], p[ENOLCK]);
  for (int e : {0, EAGAIN, EDEADLK, EINTR, ENOLCK}) EXPECT_GT(p[e], 0u) << "no byte-range lock result " << e;
}

}  // namespace
}  // namespace lunfs::dlm::testing

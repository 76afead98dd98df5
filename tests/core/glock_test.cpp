// The glock layer on its own (a recording LockManager and glops of the test's own) and
// the lock order under eight threads of namespace operations on a real core. Labelled
// core_threads so that the TSan build runs it.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fs/core/glock.h"
#include "fs/core/glops.h"
#include "tests/core/fs_fixture.h"

namespace lunfs {
namespace {

// Grants everything at once and records what this node holds from the cluster's view.
class RecordingLockManager final : public LockManager {
 public:
  void set_demote_callback(DemoteCallback cb) override { demote_ = std::move(cb); }
  Status acquire(const GlockName& name, GlockMode mode) override {
    std::lock_guard lock(mu_);
    granted_[name] = mode;
    acquires_ += 1;
    return Status::ok();
  }
  Status release(const GlockName& name) override {
    std::lock_guard lock(mu_);
    granted_.erase(name);
    releases_ += 1;
    return Status::ok();
  }
  std::string protocol() const override { return "recording"; }
  GlockMode granted(const GlockName& name) {
    std::lock_guard lock(mu_);
    auto it = granted_.find(name);
    return it == granted_.end() ? GlockMode::kUnlocked : it->second;
  }
  int acquires() {
    std::lock_guard lock(mu_);
    return acquires_;
  }
  int releases() {
    std::lock_guard lock(mu_);
    return releases_;
  }
  void demote(const GlockName& name) { demote_(name, GlockMode::kExclusive); }

 private:
  std::mutex mu_;
  std::map<GlockName, GlockMode> granted_;
  int acquires_ = 0, releases_ = 0;
  DemoteCallback demote_;
};

struct TestOwner {
  std::atomic<int> syncs{0}, invals{0};
  std::atomic<bool> fail_sync{false};
};

Status test_sync(void* owner, const GlockName&) {
  auto* o = static_cast<TestOwner*>(owner);
  o->syncs += 1;
  return o->fail_sync ? error(EIO, "injected write-back failure") : Status::ok();
}
void test_inval(void* owner, const GlockName&) { static_cast<TestOwner*>(owner)->invals += 1; }
const GlockOps kTestOps{"test", test_sync, test_inval};
const GlockOps* test_ops(GlockType) { return &kTestOps; }

struct Table {
  RecordingLockManager lm;
  TestOwner owner;
  std::string withdrawn;
  GlockTable table{lm, test_ops, &owner, [this](const std::string& why) { withdrawn = why; }};
};

const GlockName kA{GlockType::kInode, 100};
const GlockName kB{GlockType::kInode, 200};

TEST(Glock, ModesCoverOnlyThemselvesOrWeakerOfTheirFamily) {
  using M = GlockMode;
  EXPECT_TRUE(mode_covers(M::kExclusive, M::kShared));
  EXPECT_TRUE(mode_covers(M::kExclusive, M::kDeferred));
  EXPECT_TRUE(mode_covers(M::kShared, M::kShared));
  EXPECT_FALSE(mode_covers(M::kDeferred, M::kShared));
  EXPECT_FALSE(mode_covers(M::kShared, M::kDeferred));
  EXPECT_FALSE(mode_covers(M::kShared, M::kExclusive));
  EXPECT_EQ(mode_join(M::kShared, M::kDeferred), M::kExclusive);
  EXPECT_EQ(mode_join(M::kUnlocked, M::kDeferred), M::kDeferred);

  Table t;
  { auto sh = t.table.lock(kA, M::kShared); ASSERT_TRUE(sh); }
  EXPECT_EQ(t.lm.granted(kA), M::kShared);
  // Cached SH does not serve DF: the node converts (nothing held, so to DF itself).
  { auto df = t.table.lock(kA, M::kDeferred); ASSERT_TRUE(df); }
  EXPECT_EQ(t.lm.granted(kA), M::kDeferred);
  // DF held and SH wanted by another local thread: only EX covers both.
  auto df = t.table.lock(kA, M::kDeferred);
  ASSERT_TRUE(df);
  std::thread([&] {
    auto sh = t.table.lock(kA, M::kShared);
    EXPECT_TRUE(sh);
  }).join();
  EXPECT_EQ(t.lm.granted(kA), M::kExclusive);
  const int acquires = t.lm.acquires();
  df->unlock();
  // A lock held is a cache: EX serves every later request without a message.
  for (int i = 0; i < 100; ++i) {
    auto h = t.table.lock(kA, i % 2 ? M::kShared : M::kDeferred);
    ASSERT_TRUE(h);
  }
  EXPECT_EQ(t.lm.acquires(), acquires);
}

TEST(Glock, TryLockNeverWaits) {
  Table t;
  auto miss = t.table.try_lock(kA, GlockMode::kExclusive);
  ASSERT_FALSE(miss);
  EXPECT_EQ(miss.err(), kGlockRetry);
  EXPECT_EQ(t.lm.acquires(), 0);  // not cached: try_lock asks nobody
  { auto ex = t.table.lock(kA, GlockMode::kExclusive); ASSERT_TRUE(ex); }
  auto hit = t.table.try_lock(kA, GlockMode::kExclusive);
  ASSERT_TRUE(hit);
  // A local exclusive holder is in the way.
  auto busy = t.table.try_lock(kA, GlockMode::kShared);
  ASSERT_FALSE(busy);
  EXPECT_EQ(busy.err(), kGlockRetry);
  // Locally shared EX holders (allocating writes) share.
  hit->unlock();
  auto w1 = t.table.lock(kA, GlockMode::kExclusive, kLocalShared);
  auto w2 = t.table.try_lock(kA, GlockMode::kExclusive, kLocalShared);
  EXPECT_TRUE(w1);
  EXPECT_TRUE(w2);
}

// A single-host mount's manager grants at once, so try_lock (rgrp glocks under meta_mu)
// never sends an operation round again there.
TEST(Glock, TryLockTakesWhatTheManagerGrantsAtOnce) {
  NoLockManager lm;
  TestOwner owner;
  GlockTable table(lm, test_ops, &owner, [](const std::string&) {});
  auto first = table.try_lock(kA, GlockMode::kExclusive);
  ASSERT_TRUE(first) << first.status().to_string();
  first->unlock();
  auto again = table.try_lock(kA, GlockMode::kShared);
  EXPECT_TRUE(again);
}

TEST(Glock, DemoteSyncsInvalidatesThenReleases) {
  Table t;
  { auto ex = t.table.lock(kA, GlockMode::kExclusive); ASSERT_TRUE(ex); }
  t.lm.demote(kA);
  EXPECT_EQ(t.owner.syncs, 1);
  EXPECT_EQ(t.owner.invals, 1);
  EXPECT_EQ(t.lm.granted(kA), GlockMode::kUnlocked);
  // The next holder asks the cluster again.
  const int acquires = t.lm.acquires();
  { auto sh = t.table.lock(kA, GlockMode::kShared); ASSERT_TRUE(sh); }
  EXPECT_EQ(t.lm.acquires(), acquires + 1);
}

TEST(Glock, FailingSyncWithdrawsAndKeepsTheLock) {
  Table t;
  { auto ex = t.table.lock(kA, GlockMode::kExclusive); ASSERT_TRUE(ex); }
  t.owner.fail_sync = true;
  t.lm.demote(kA);
  EXPECT_NE(t.withdrawn.find("inode:100"), std::string::npos) << t.withdrawn;
  EXPECT_EQ(t.lm.releases(), 0);
  EXPECT_EQ(t.owner.invals, 0);
  EXPECT_EQ(t.lm.granted(kA), GlockMode::kExclusive);
}

TEST(Glock, DemoteWaitsForHoldersAndPins) {
  Table t;
  auto sh = t.table.lock(kA, GlockMode::kShared);
  ASSERT_TRUE(sh);
  GlockPin pin = sh->pin();
  sh->unlock();
  std::atomic<bool> demoted{false};
  std::thread demoter([&] {
    t.lm.demote(kA);
    demoted = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(demoted);  // the direct I/O in flight keeps it
  EXPECT_EQ(t.lm.granted(kA), GlockMode::kShared);
  pin.release();
  demoter.join();
  EXPECT_TRUE(demoted);
  EXPECT_EQ(t.lm.granted(kA), GlockMode::kUnlocked);
}

// While any holder exists, the cluster has granted its node a covering mode: a demote
// racing with lock() never leaves a holder without the cluster lock.
TEST(Glock, NoHolderWithoutTheClusterLockUnderDemotes) {
  Table t;
  std::atomic<bool> stop{false};
  std::atomic<int> violations{0}, holds{0};
  std::vector<std::thread> lockers;
  for (int i = 0; i < 3; ++i) {
    lockers.emplace_back([&, i] {
      for (int n = 0; n < 3000; ++n) {
        GlockMode m = (n + i) % 3 == 0 ? GlockMode::kExclusive : (n + i) % 3 == 1 ? GlockMode::kShared
                                                                                   : GlockMode::kDeferred;
        auto h = t.table.lock(kA, m);
        if (!h) {
          ++violations;
          continue;
        }
        if (!mode_covers(t.lm.granted(kA), m)) ++violations;
        ++holds;
      }
    });
  }
  std::thread demoter([&] {
    while (!stop) t.lm.demote(kA);
  });
  for (auto& th : lockers) th.join();
  stop = true;
  demoter.join();
  EXPECT_EQ(violations, 0);
  EXPECT_EQ(holds, 9000);
}

// Answers a conversion of a lock this node holds with EDEADLK while `refuse` is set, as
// the DLM does when two nodes convert the same resource at once and each waits for the
// other's granted mode; records every call.
class DeadlockingLockManager final : public LockManager {
 public:
  void set_demote_callback(DemoteCallback) override {}
  Status acquire(const GlockName& name, GlockMode mode) override {
    std::lock_guard lock(mu_);
    const bool converting = held_.count(name) != 0;
    calls_.push_back(std::string(converting ? "convert " : "request ") + mode_name(mode));
    if (converting && refuse) return error(EDEADLK, "conversion deadlock");
    held_[name] = mode;
    return Status::ok();
  }
  Status release(const GlockName& name) override {
    std::lock_guard lock(mu_);
    calls_.push_back("release");
    held_.erase(name);
    return Status::ok();
  }
  std::string protocol() const override { return "deadlocking"; }
  std::vector<std::string> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::atomic<bool> refuse{true};

 private:
  std::mutex mu_;
  std::map<GlockName, GlockMode> held_;
  std::vector<std::string> calls_;
};

TEST(Glock, RefusedConversionOfAnUnusedLockGivesItBackAndAsksAgain) {
  DeadlockingLockManager lm;
  TestOwner owner;
  GlockTable table{lm, test_ops, &owner, [](const std::string&) {}};
  { auto sh = table.lock(kA, GlockMode::kShared); ASSERT_TRUE(sh); }
  auto ex = table.lock(kA, GlockMode::kExclusive);
  ASSERT_TRUE(ex) << ex.status().to_string();
  // Synced and invalidated before the release: whatever SH covered may change meanwhile.
  EXPECT_EQ(owner.syncs, 1);
  EXPECT_EQ(owner.invals, 1);
  EXPECT_EQ(lm.calls(), (std::vector<std::string>{"request SH", "convert EX", "release", "request EX"}));
}

TEST(Glock, RefusedConversionOfALockInUseFailsTheRequestAndKeepsTheLock) {
  DeadlockingLockManager lm;
  TestOwner owner;
  GlockTable table{lm, test_ops, &owner, [](const std::string&) {}};
  auto df = table.lock(kA, GlockMode::kDeferred);
  ASSERT_TRUE(df);
  // Another local thread wants SH beside the DF holder: only EX covers both, and the DF
  // holder still relies on the cached mode, so nothing may be given back.
  std::thread([&] {
    auto sh = table.lock(kA, GlockMode::kShared);
    ASSERT_FALSE(sh);
    EXPECT_EQ(sh.err(), EDEADLK);
  }).join();
  EXPECT_EQ(owner.syncs, 0);
  EXPECT_EQ(lm.calls(), (std::vector<std::string>{"request DF", "convert EX"}));
  df->unlock();
  lm.refuse = false;
  auto sh = table.lock(kA, GlockMode::kShared);
  EXPECT_TRUE(sh);
}

TEST(Glock, UnusedGlocksAreFreedLeastRecentlyUsedFirst) {
  Table t;
  t.table.set_max_unused(2);
  for (uint64_t i = 1; i <= 5; ++i) {
    auto h = t.table.lock({GlockType::kInode, i}, GlockMode::kShared);
    ASSERT_TRUE(h);
  }
  EXPECT_EQ(t.table.size(), 2u);
  // The three oldest went back to the cluster after a sync and an invalidation.
  EXPECT_EQ(t.lm.releases(), 3);
  EXPECT_EQ(t.owner.syncs, 3);
  EXPECT_EQ(t.lm.granted({GlockType::kInode, 1}), GlockMode::kUnlocked);
  EXPECT_EQ(t.lm.granted({GlockType::kInode, 5}), GlockMode::kShared);
  // A held glock is never freed.
  auto held = t.table.lock({GlockType::kInode, 9}, GlockMode::kShared);
  for (uint64_t i = 10; i <= 14; ++i) {
    auto h = t.table.lock({GlockType::kInode, i}, GlockMode::kShared);
    ASSERT_TRUE(h);
  }
  EXPECT_EQ(t.lm.granted({GlockType::kInode, 9}), GlockMode::kShared);
}

TEST(GlockDeathTest, MetaMutexIsNotRecursive) {
  MetaMutex mu;
  EXPECT_DEATH(
      {
        std::lock_guard a(mu);
        std::lock_guard b(mu);
      },
      "not recursive");
}

#ifndef NDEBUG
TEST(GlockDeathTest, OrderIsAssertedInBuildsWithAssertions) {
  Table t;
  EXPECT_DEATH(
      {
        auto high = t.table.lock(kB, GlockMode::kExclusive);
        auto low = t.table.lock(kA, GlockMode::kExclusive);
      },
      "glock order violated");
  EXPECT_DEATH(
      {
        MetaMutex mu;
        std::lock_guard g(mu);
        auto h = t.table.lock(kA, GlockMode::kShared);
      },
      "under meta_mu");
  // The exemptions: a new inode, and try_lock under meta_mu.
  auto high = t.table.lock(kB, GlockMode::kExclusive);
  auto fresh = t.table.lock(kA, GlockMode::kExclusive, kNewInode);
  EXPECT_TRUE(fresh);
}
#endif

// Issue 11, defect 4: rmdir(D, "C") took D's glock and then C's, rename(D/x -> C/y) the
// lower number first; with C below D the two deadlocked. Eight threads run rename, rmdir,
// mkdir, link, unlink and create over a small tree whose subdirectories have lower inode
// numbers than their parents, for a fixed number of operations each. A watchdog turns a
// hang into a failure with the holders listed. Then every name resolves, link counts
// match the names, and fsck finds nothing.
TEST(GlockOrder, EightThreadsOfNamespaceOperationsFinish) {
  testing::FsFixture f({});
  ASSERT_TRUE(f.ok());
  FileSystem& fs = f.fs();
  // Subdirectories made first (low numbers), then moved under parents made later.
  std::vector<uint64_t> dirs;
  for (int i = 0; i < 4; ++i) {
    auto c = fs.mkdir(fs.root(), "c" + std::to_string(i), 0755, {});
    ASSERT_TRUE(c);
  }
  for (int i = 0; i < 4; ++i) {
    auto d = fs.mkdir(fs.root(), "d" + std::to_string(i), 0755, {});
    ASSERT_TRUE(d);
    ASSERT_TRUE(fs.rename(fs.root(), "c" + std::to_string(i), d->ino, "c", 0));
    auto c = fs.lookup(d->ino, "c");
    ASSERT_TRUE(c);
    ASSERT_LT(c->ino, d->ino);
    // Never empty (no operation touches "keep"), so every rmdir of it locks both
    // directories and fails with ENOTEMPTY: the deadlock's window stays open all run long.
    ASSERT_TRUE(fs.mknod(c->ino, "keep", S_IFREG | 0644, 0, {}));
    dirs.push_back(d->ino);
    dirs.push_back(c->ino);
  }
  std::atomic<int> finished{0};
  std::atomic<bool> done{false};
  std::thread watchdog([&] {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!done && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!done) {
      std::fprintf(stderr, "lock-order stress hung: %d of 8 threads finished; glocks:\n%s", finished.load(),
                   fs.glock_dump().c_str());
      std::abort();
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(1000 + t);
      auto pick = [&] { return dirs[rng() % dirs.size()]; };
      for (int n = 0; n < 4000; ++n) {
        const std::string a = "n" + std::to_string(rng() % 6), b = "n" + std::to_string(rng() % 6);
        switch (rng() % 14) {
          case 0: (void)fs.rename(pick(), a, pick(), b, 0); break;
          case 1: (void)fs.rmdir(pick(), a); break;
          case 2: (void)fs.mkdir(pick(), a, 0755, {}); break;
          case 3: {
            auto x = fs.lookup(pick(), a);
            if (x && !S_ISDIR(x->mode)) (void)fs.link(x->ino, pick(), b);
            break;
          }
          case 4: (void)fs.unlink(pick(), a); break;
          case 5: (void)fs.mknod(pick(), a, S_IFREG | 0644, 0, {}); break;
          default: {  // rmdir(D, "c") against rename(C/x -> D/y), C numbered below D
            const int i = rng() % 4;
            (void)fs.rmdir(dirs[2 * i], "c");
            (void)fs.rename(dirs[2 * i + 1], a, dirs[2 * i], b, 0);
            break;
          }
        }
      }
      ++finished;
    });
  }
  for (auto& th : threads) th.join();
  done = true;
  watchdog.join();

  // Every name resolves and link counts equal the names found.
  std::map<uint64_t, uint32_t> names, subdirs;
  std::vector<uint64_t> todo{fs.root()};
  while (!todo.empty()) {
    uint64_t d = todo.back();
    todo.pop_back();
    std::vector<DirListing> entries;
    ASSERT_TRUE(fs.readdir(d, 0, [&](const DirListing& e) {
      if (e.name != "." && e.name != "..") entries.push_back(e);
      return true;
    }));
    for (const DirListing& e : entries) {
      auto a = fs.lookup(d, e.name);
      ASSERT_TRUE(a) << e.name << ": " << a.status().to_string();
      EXPECT_EQ(a->ino, e.ino);
      names[a->ino] += 1;
      if (S_ISDIR(a->mode)) {
        subdirs[d] += 1;
        todo.push_back(a->ino);
      }
    }
  }
  for (auto& [ino, count] : names) {
    auto a = fs.getattr(ino);
    ASSERT_TRUE(a);
    if (S_ISDIR(a->mode)) {
      EXPECT_EQ(count, 1u);
      EXPECT_EQ(a->nlink, 2 + subdirs[ino]) << "directory " << ino;
    } else {
      EXPECT_EQ(a->nlink, count) << "file " << ino;
    }
  }
  f.expect_clean();
}

}  // namespace
}  // namespace lunfs

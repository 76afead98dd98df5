// Lock-manager benchmarks on real Corosync, one process per harness node; run-cluster-bench
// drives them and prints ratios against the CPG self-delivery baseline measured in the
// same run. Each mode prints "result KEY VALUE" lines.
//
//   baseline N          CPG send -> own delivery round trip (raw CPG group), median µs
//   latency N           uncontended new lock (EX on a fresh name), median/p99 µs
//   cached N            re-lock of a lock this node already holds (LockCache), ns, messages
//   throughput SECS W   lock+unlock pairs/s with W requests in flight, ops per CPG message
//   pingpong SECS       EX handoffs between nodes running this at once (LockCache)
//   member SECS         just be a member of the lock space for SECS
//   hold NAME           take EX on NAME, print "held", wait to be killed
//   recover NAME        wait for NAME (held by a node about to be killed); recovery_done in
//                       the hook; time from the hook (Corosync reported the leave) to grant
//
// Timing is done by hand rather than with Google Benchmark: each figure spans processes
// on several nodes started together, which its single-process loop does not model.
#include <corosync/cpg.h>
#include <poll.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dlm/cpg_transport.h"
#include "dlm/lock_cache.h"
#include "dlm/lockspace.h"

using namespace lunfs::dlm;
using Clock = std::chrono::steady_clock;

namespace {

void result(const char* key, double v) { std::printf("result %s %.3f\n", key, v), std::fflush(stdout); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
double pct(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}
double us_since(Clock::time_point t) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

// ---- raw CPG baseline ----
struct Raw {
  bool got = false, joined = false;
  uint32_t me = 0;
};
Raw raw;
void raw_deliver(cpg_handle_t, const cpg_name*, uint32_t node, uint32_t, void*, size_t) {
  if (node == raw.me) raw.got = true;
}
void raw_confchg(cpg_handle_t, const cpg_name*, const cpg_address*, size_t, const cpg_address*,
                 size_t, const cpg_address* j, size_t nj) {
  for (size_t i = 0; i < nj; ++i)
    if (j[i].nodeid == raw.me) raw.joined = true;
}

int baseline(int n) {
  cpg_callbacks_t cb{raw_deliver, raw_confchg};
  cpg_handle_t h;
  if (cpg_initialize(&h, &cb) != CS_OK) return std::printf("err no corosync\n"), 1;
  cpg_local_get(h, &raw.me);
  cpg_name g{};
  std::string name = "lunfs-bench-raw-" + std::to_string(raw.me);
  g.length = uint32_t(name.size());
  std::memcpy(g.value, name.data(), name.size());
  cpg_join(h, &g);
  int fd;
  cpg_fd_get(h, &fd);
  auto pump = [&](bool& flag) {
    while (!flag) {
      pollfd p{fd, POLLIN, 0};
      poll(&p, 1, 1000);
      cpg_dispatch(h, CS_DISPATCH_ALL);
    }
  };
  pump(raw.joined);
  char msg[64] = {};
  iovec iov{msg, sizeof msg};
  std::vector<double> v;
  for (int i = 0; i < n; ++i) {
    raw.got = false;
    auto t = Clock::now();
    while (cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1) == CS_ERR_TRY_AGAIN) std::this_thread::yield();
    pump(raw.got);
    v.push_back(us_since(t));
  }
  result("cpg_roundtrip_us", median(v));
  cpg_leave(h, &g);
  cpg_finalize(h);
  return 0;
}

// ---- lock space helpers ----
struct Async : LockClient {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<LockId> granted;
  Clock::time_point hook_at{}, grant_at{};
  LockSpace* ls = nullptr;
  void completion(uint64_t, LockId id, Status st, Mode, const Lvb&) override {
    std::lock_guard g(mu);
    if (st == Status::kOk) granted.push_back(id);
    grant_at = Clock::now();
    cv.notify_all();
  }
  void blocking(uint64_t, LockId, Mode) override {}
  void recover(const Departure& departure, const std::vector<HeldLock>&) override {
    {
      std::lock_guard g(mu);
      hook_at = Clock::now();
    }
    // A refusal leaves the lock ungranted: the waiting mode times out and fails.
    if (ls && ls->recovery_done(departure) != Status::kOk) std::printf("err recovery_done\n");
  }
};

std::unique_ptr<LockSpace> open(LockClient* c, std::shared_ptr<CpgStats> stats) {
  std::unique_ptr<Transport> t;
  if (make_cpg_transport("bench", &t, stats) != Status::kOk) return nullptr;
  auto ls = make_lockspace(std::move(t), c);
  if (ls->join(std::chrono::seconds(30)) != Status::kOk) return nullptr;
  // Figures are for a lock space that spans every node of the cluster: wait for all.
  const char* want = std::getenv("LUNFS_BENCH_MEMBERS");
  size_t members = want ? size_t(std::atoi(want)) : 1;
  for (int i = 0; i < 30000 && (!ls->quorate() || ls->members().size() < members); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return ls;
}

int latency(int n) {
  Async c;
  auto ls = open(&c, nullptr);
  if (!ls) return std::printf("err join\n"), 1;
  std::vector<double> v;
  std::string base = "lat-" + std::to_string(ls->node_id()) + "-";
  for (int i = 0; i < n; ++i) {
    LockId id;
    auto t = Clock::now();
    if (ls->lock(base + std::to_string(i), Mode::EX, 0, std::chrono::seconds(10), &id) != Status::kOk)
      return std::printf("err lock\n"), 1;
    v.push_back(us_since(t));
    if (ls->unlock(id) != Status::kOk) return std::printf("err unlock\n"), 1;
  }
  result("lock_median_us", median(v));
  result("lock_p99_us", pct(v, 0.99));
  return 0;
}

int cached(int n) {
  LockCache cache;
  auto stats = std::make_shared<CpgStats>();
  auto ls = open(&cache, stats);
  if (!ls) return std::printf("err join\n"), 1;
  cache.attach(ls.get());
  std::string name = "cached-" + std::to_string(ls->node_id());
  if (cache.acquire(name, Mode::EX, std::chrono::seconds(10)) != Status::kOk)
    return std::printf("err acquire\n"), 1;
  cache.release(name);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  uint64_t before = stats->messages;
  auto t = Clock::now();
  for (int i = 0; i < n; ++i) {
    if (cache.acquire(name, Mode::PR, std::chrono::seconds(10)) != Status::kOk)
      return std::printf("err acquire\n"), 1;
    cache.release(name);
  }
  double ns = us_since(t) * 1000 / n;
  result("cached_relock_ns", ns);
  result("cached_relock_messages", double(stats->messages - before));
  return 0;
}

int throughput(int secs, int window) {
  struct Tp : LockClient {
    LockSpace* ls = nullptr;
    std::atomic<uint64_t> pairs{0};
    std::atomic<bool> stop{false};
    std::atomic<bool> refused{false};  // an unlock or request failed: the figure is void
    std::string base;
    void completion(uint64_t cookie, LockId id, Status st, Mode, const Lvb&) override {
      if (st != Status::kOk) return;
      if (ls->unlock(id) != Status::kOk) refused = true;
      ++pairs;
      if (stop) return;
      LockId next;
      if (ls->request(base + std::to_string(cookie), Mode::EX, 0, cookie, &next) != Status::kOk)
        refused = true;
    }
    void blocking(uint64_t, LockId, Mode) override {}
    void recover(const Departure&, const std::vector<HeldLock>&) override {}
  } tp;
  auto stats = std::make_shared<CpgStats>();
  auto ls = open(&tp, stats);
  if (!ls) return std::printf("err join\n"), 1;
  tp.ls = ls.get();
  tp.base = "tp-" + std::to_string(ls->node_id()) + "-";
  auto t = Clock::now();
  for (int k = 0; k < window; ++k) {
    LockId id;
    if (ls->request(tp.base + std::to_string(k), Mode::EX, 0, uint64_t(k), &id) != Status::kOk)
      return std::printf("err request\n"), 1;
  }
  std::this_thread::sleep_for(std::chrono::seconds(secs));
  uint64_t pairs = tp.pairs;
  double el = us_since(t) / 1e6;
  uint64_t msgs = stats->messages, ops = stats->ops;
  tp.stop = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  if (tp.refused) return std::printf("err unlock or request refused\n"), 1;
  result("pairs_per_s", double(pairs) / el);
  result("ops_per_message", msgs ? double(ops) / double(msgs) : 0);
  result("try_again", double(stats->try_again));
  ls->leave();
  return 0;
}

int pingpong(int secs) {
  LockCache cache;
  auto ls = open(&cache, nullptr);
  if (!ls) return std::printf("err join\n"), 1;
  cache.attach(ls.get());
  auto end = Clock::now() + std::chrono::seconds(secs);
  uint64_t start_grants = cache.remote_grants();
  while (Clock::now() < end) {
    if (cache.acquire("pp", Mode::EX, std::chrono::seconds(5)) != Status::kOk) continue;
    cache.release("pp");
  }
  result("handoffs_per_s", double(cache.remote_grants() - start_grants) / secs);
  ls->leave();
  return 0;
}

int member(int secs) {
  Async c;
  auto ls = open(&c, nullptr);
  if (!ls) return std::printf("err join\n"), 1;
  std::this_thread::sleep_for(std::chrono::seconds(secs));
  ls->leave();
  return 0;
}

int hold(const std::string& name) {
  Async c;
  auto ls = open(&c, nullptr);
  if (!ls) return std::printf("err join\n"), 1;
  LockId id;
  if (ls->lock(name, Mode::EX, 0, std::chrono::seconds(10), &id) != Status::kOk) return 1;
  std::printf("held\n"), std::fflush(stdout);
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

int recover(const std::string& name) {
  Async c;
  auto ls = open(&c, nullptr);
  if (!ls) return std::printf("err join\n"), 1;
  c.ls = ls.get();
  LockId id;
  std::printf("waiting\n"), std::fflush(stdout);
  if (ls->lock(name, Mode::EX, 0, std::chrono::seconds(60), &id) != Status::kOk)
    return std::printf("err lock\n"), 1;
  timespec rt;
  clock_gettime(CLOCK_REALTIME, &rt);
  std::lock_guard g(c.mu);
  result("leave_to_grant_ms",
         std::chrono::duration<double, std::milli>(Clock::now() - c.hook_at).count());
  result("grant_realtime_ms", double(rt.tv_sec) * 1e3 + double(rt.tv_nsec) / 1e6);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return std::fprintf(stderr, "usage: see the header of dlm_cpg_bench.cpp\n"), 2;
  std::string mode = argv[1];
  if (mode == "baseline") return baseline(std::atoi(argv[2]));
  if (mode == "latency") return latency(std::atoi(argv[2]));
  if (mode == "cached") return cached(std::atoi(argv[2]));
  if (mode == "throughput" && argc == 4) return throughput(std::atoi(argv[2]), std::atoi(argv[3]));
  if (mode == "pingpong") return pingpong(std::atoi(argv[2]));
  if (mode == "hold") return hold(argv[2]);
  if (mode == "member") return member(std::atoi(argv[2]));
  if (mode == "recover") return recover(argv[2]);
  return 2;
}

// lunfs-dlm-node LOCKSPACE [JOIN_TIMEOUT_MS]: joins a lock space over Corosync CPG, takes and releases locks on
// commands read from stdin (one per line, one answer line each: "ok ..." or "err <status>"),
// prints callbacks as "event ..." lines, and serves the control socket behind
// `lunfs locks`. It stands in for the mount daemon (which will embed the same pieces) in the
// multi-node tests and benchmarks.
//
//   lock NAME MODE [noqueue] [TIMEOUT_MS]   -> ok ID LVB|invalid
//   convert ID MODE [TIMEOUT_MS]            -> ok LVB|invalid
//   unlock ID [LVB_TEXT]                    -> ok
//   recovery-done NODE                      -> ok (recovery_done of every departure of NODE
//                                              the hook has reported)
//   auto-recover on|off   call recovery_done as soon as the hook reports a departure (a
//                         refusal prints "event recovery-done-failed NODE STATUS")
//   wait-recover NODE TIMEOUT_MS            -> ok N_LOCKS_IT_HELD (its last departure's,
//                                              after the hook ran)
//   stress N SEED    N random lock/hold/unlock rounds on resources s0..s3; prints one line
//                    "iv RES MODE T_GRANTED T_RELEASED" (CLOCK_MONOTONIC ns, shared by all
//                    nodes of a one-machine cluster) per round, then "ok"
//   quorate | members | node | dump (ends with a line "end") | quit
#include <qb/qblog.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <time.h>
#include <sstream>
#include <string>

#include "dlm/control.h"
#include "dlm/cpg_transport.h"
#include "dlm/lockspace.h"

namespace lunfs::dlm {
namespace {

std::mutex out_mu;
void say(const std::string& line) {
  std::lock_guard g(out_mu);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

std::string lvb_text(const Lvb& lvb) {
  if (!lvb.valid) return "invalid";
  std::string s(reinterpret_cast<const char*>(lvb.bytes.data()), lvb.bytes.size());
  return s.substr(0, s.find('\0'));
}

class Client : public LockClient {
 public:
  void completion(uint64_t, LockId id, Status st, Mode m, const Lvb&) override {
    say("event done " + std::to_string(id) + " " + std::string(status_name(st)) + " " +
        std::string(mode_name(m)));
  }
  void blocking(uint64_t, LockId id, Mode m) override {
    say("event blocking " + std::to_string(id) + " " + std::string(mode_name(m)));
  }
  void recover(const Departure& d, const std::vector<HeldLock>& held) override {
    say("event recover " + std::to_string(d.node) + " " + std::to_string(held.size()));
    bool autorec;
    {
      std::lock_guard g(mu);
      departures[d.node][d.id] = held.size();
      autorec = auto_recover;
      cv.notify_all();
    }
    if (!autorec) return;
    if (Status s = ls->recovery_done(d); s != Status::kOk)
      say("event recovery-done-failed " + std::to_string(d.node) + " " + std::string(status_name(s)));
  }
  void quorum(bool q) override { say("event quorum " + std::to_string(q)); }
  void failed(Status why) override { say("event failed " + std::string(status_name(why))); }

  LockSpace* ls = nullptr;
  std::mutex mu;
  std::condition_variable cv;
  std::map<NodeId, std::map<uint32_t, size_t>> departures;  // node -> departure id -> locks held
  bool auto_recover = false;
};

int run(const std::string& name, std::chrono::milliseconds join_timeout) {
  Client client;
  std::unique_ptr<LockSpace> ls;
  if (Status s = make_cpg_lockspace(name, &client, &ls); s != Status::kOk) {
    say("err " + std::string(status_name(s)));
    return 1;
  }
  client.ls = ls.get();
  if (Status s = ls->join(join_timeout); s != Status::kOk) {
    say("err " + std::string(status_name(s)));
    return 1;
  }
  std::unique_ptr<ControlServer> control;
  if (Status s = start_control_server(name, [&] { return ls->dump(); }, &control);
      s != Status::kOk)
    qb_log(LOG_WARNING, "control socket unavailable: %s", std::string(status_name(s)).c_str());
  say("ready " + std::to_string(ls->node_id()));

  auto err = [](Status s) { say("err " + std::string(status_name(s))); };
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    if (cmd == "lock") {
      std::string res, mode, opt;
      in >> res >> mode;
      uint32_t flags = 0;
      long timeout = 10000;
      while (in >> opt) {
        if (opt == "noqueue") flags |= kNoQueue;
        else timeout = std::stol(opt);
      }
      auto m = parse_mode(mode);
      if (!m) { err(Status::kInvalid); continue; }
      LockId id = 0;
      Lvb lvb;
      Status s = ls->lock(res, *m, flags, std::chrono::milliseconds(timeout), &id, &lvb);
      if (s != Status::kOk) err(s);
      else say("ok " + std::to_string(id) + " " + lvb_text(lvb));
    } else if (cmd == "convert") {
      LockId id = 0;
      std::string mode;
      long timeout = 10000;
      in >> id >> mode >> timeout;
      auto m = parse_mode(mode);
      if (!m) { err(Status::kInvalid); continue; }
      Lvb lvb;
      Status s = ls->convert_wait(id, *m, 0, std::chrono::milliseconds(timeout), &lvb);
      if (s != Status::kOk) err(s);
      else say("ok " + lvb_text(lvb));
    } else if (cmd == "unlock") {
      LockId id = 0;
      std::string text;
      in >> id >> text;
      LvbBytes lvb{};
      std::copy_n(text.begin(), std::min(text.size(), lvb.size()), lvb.begin());
      Status s = ls->unlock(id, text.empty() ? nullptr : &lvb);
      if (s != Status::kOk) err(s);
      else say("ok");
    } else if (cmd == "recovery-done") {
      NodeId n = 0;
      in >> n;
      std::vector<Departure> known;
      {
        std::lock_guard g(client.mu);
        for (const auto& [id, held] : client.departures[n]) known.push_back({n, id});
      }
      Status s = Status::kOk;
      for (const Departure& d : known)
        if (Status r = ls->recovery_done(d); r != Status::kOk) s = r;
      if (s != Status::kOk) err(s);
      else say("ok");
    } else if (cmd == "auto-recover") {
      std::string v;
      in >> v;
      std::lock_guard g(client.mu);
      client.auto_recover = v == "on";
      say("ok");
    } else if (cmd == "wait-recover") {
      NodeId n = 0;
      long timeout = 0;
      in >> n >> timeout;
      std::unique_lock lk(client.mu);
      if (client.cv.wait_for(lk, std::chrono::milliseconds(timeout),
                             [&] { return !client.departures[n].empty(); }))
        say("ok " + std::to_string(client.departures[n].rbegin()->second));
      else
        err(Status::kTimedOut);
    } else if (cmd == "stress") {
      int rounds = 0;
      unsigned seed = 0;
      in >> rounds >> seed;
      std::mt19937 rng(seed);
      std::string ivs;
      Status bad = Status::kOk;
      for (int i = 0; i < rounds && bad == Status::kOk; ++i) {
        std::string res = "s" + std::to_string(rng() % 4);
        Mode m = Mode(rng() % kModeCount);
        LockId id;
        Status s = ls->lock(res, m, 0, std::chrono::seconds(20), &id);
        if (s != Status::kOk) { bad = s; break; }
        auto t0 = now_ns();
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
        auto t1 = now_ns();
        ivs += "iv " + res + " " + std::string(mode_name(m)) + " " + std::to_string(t0) + " " +
               std::to_string(t1) + "\n";
        bad = ls->unlock(id);
      }
      if (bad != Status::kOk) err(bad);
      else say(ivs + "ok");
    } else if (cmd == "quorate") {
      say("ok " + std::to_string(ls->quorate()));
    } else if (cmd == "members") {
      std::string s = "ok";
      for (NodeId n : ls->members()) s += " " + std::to_string(n);
      say(s);
    } else if (cmd == "node") {
      say("ok " + std::to_string(ls->node_id()));
    } else if (cmd == "dump") {
      say(ls->dump() + "end");
    } else if (cmd == "quit") {
      break;
    } else if (!cmd.empty()) {
      err(Status::kInvalid);
    }
  }
  ls->leave();
  return 0;
}

}  // namespace
}  // namespace lunfs::dlm

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: lunfs-dlm-node LOCKSPACE [JOIN_TIMEOUT_MS]\n");
    return 2;
  }
  qb_log_init("lunfs-dlm-node", LOG_DAEMON, LOG_INFO);
  qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
  qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
  qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", LOG_WARNING);
  std::chrono::milliseconds timeout(argc == 3 ? std::atol(argv[2]) : 30000);
  int rc = lunfs::dlm::run(argv[1], timeout);
  qb_log_fini();
  return rc;
}

// Corosync CPG transport (see cpg_transport.h).
//
// One thread per lock space owns the CPG and quorum handles: it polls their fds and an
// eventfd that send()/leave() poke, dispatches deliveries, and multicasts whatever
// operations are queued as one CPG message — while a multicast is being refused
// (CS_ERR_TRY_AGAIN: totem queue full, flow control) operations keep accumulating, so the
// batch grows exactly when the ring is busy. The retry backs off from 100 µs to 50 ms and
// keeps dispatching meanwhile (delivery is what drains the queue); after 30 s of refusals,
// or on any other error (corosync died or restarted), the lock space fails.
#include "dlm/cpg_transport.h"

#include <corosync/cpg.h>
#include <corosync/quorum.h>
#include <poll.h>
#include <qb/qblog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "dlm/lockspace_impl.h"

namespace lunfs::dlm {

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxBatchBytes = 256 * 1024;
constexpr auto kMaxBackoff = std::chrono::milliseconds(50);
constexpr auto kGiveUp = std::chrono::seconds(30);

class CpgTransport final : public Transport {
 public:
  CpgTransport(std::string group, std::shared_ptr<CpgStats> stats)
      : group_(std::move(group)), stats_(stats ? stats : std::make_shared<CpgStats>()) {}
  ~CpgTransport() override;

  Status connect();
  Status start(TransportListener* listener, std::chrono::milliseconds timeout) override;
  Status send(std::string op) override;
  void leave() override;
  NodeId local_node() const override { return node_; }

 private:
  static void on_deliver(cpg_handle_t, const cpg_name*, uint32_t nodeid, uint32_t, void* msg,
                         size_t len);
  static void on_confchg(cpg_handle_t, const cpg_name*, const cpg_address* members,
                         size_t nmembers, const cpg_address* left, size_t nleft,
                         const cpg_address* joined, size_t njoined);
  static void on_quorum(quorum_handle_t, uint32_t quorate, uint64_t, uint32_t, uint32_t*);
  void loop();
  bool flush();  // false: the transport failed
  void poke();
  void fail(const char* what, int err);

  std::string group_;
  std::shared_ptr<CpgStats> stats_;
  cpg_handle_t cpg_ = 0;
  quorum_handle_t quorum_ = 0;
  bool have_cpg_ = false, have_quorum_ = false;
  NodeId node_ = 0;
  int wake_ = -1;
  TransportListener* listener_ = nullptr;
  std::thread thread_;
  std::thread::id loop_id_;

  std::mutex cpg_mu_;  // held for every call on cpg_ after start()
  std::mutex mu_;
  std::deque<std::string> queue_;
  bool stop_ = false;
  bool leaving_ = false;

  // Owned by the loop thread.
  std::string batch_;
  size_t batch_ops_ = 0;
  Clock::time_point retry_at_{}, refused_since_{};
  std::chrono::microseconds backoff_{100};
  bool joined_ = false;
  bool failed_ = false;
};

cpg_name group_name(const std::string& g) {
  cpg_name n{};
  n.length = uint32_t(std::min(g.size(), size_t(CPG_MAX_NAME_LENGTH)));
  std::memcpy(n.value, g.data(), n.length);
  return n;
}

Status CpgTransport::connect() {
  cpg_model_v1_data_t model{};
  model.model = CPG_MODEL_V1;
  model.cpg_deliver_fn = on_deliver;
  model.cpg_confchg_fn = on_confchg;
  cs_error_t err = cpg_model_initialize(&cpg_, CPG_MODEL_V1,
                                        reinterpret_cast<cpg_model_data_t*>(&model), this);
  if (err != CS_OK) {
    qb_log(LOG_ERR, "cpg_model_initialize: error %d (is corosync running?)", err);
    return Status::kShutdown;
  }
  have_cpg_ = true;
  unsigned int id = 0;
  if ((err = cpg_local_get(cpg_, &id)) != CS_OK) {
    qb_log(LOG_ERR, "cpg_local_get: error %d", err);
    return Status::kShutdown;
  }
  node_ = id;
  quorum_callbacks_t qcb{};
  qcb.quorum_notify_fn = on_quorum;
  uint32_t qtype = 0;
  if ((err = quorum_initialize(&quorum_, &qcb, &qtype)) != CS_OK) {
    qb_log(LOG_ERR, "quorum_initialize: error %d", err);
    return Status::kShutdown;
  }
  have_quorum_ = true;
  quorum_context_set(quorum_, this);
  wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  return wake_ < 0 ? Status::kShutdown : Status::kOk;
}

CpgTransport::~CpgTransport() {
  {
    std::lock_guard g(mu_);
    stop_ = true;
  }
  poke();
  if (thread_.joinable()) thread_.join();
  if (have_cpg_) {
    if (joined_) {
      cpg_name n = group_name(group_);
      cpg_leave(cpg_, &n);
    }
    cpg_finalize(cpg_);
  }
  if (have_quorum_) quorum_finalize(quorum_);
  if (wake_ >= 0) close(wake_);
}

Status CpgTransport::start(TransportListener* listener, std::chrono::milliseconds timeout) {
  listener_ = listener;
  // Join only with quorum. A node cut off from the cluster must not found a lock space of
  // its own: it would never have had quorum, so nothing would mark its table stale when
  // the partition heals and it merges with the real one.
  int quorate = 0;
  auto deadline = Clock::now() + timeout;
  while (quorum_getquorate(quorum_, &quorate) == CS_OK && !quorate && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (!quorate) {
    qb_log(LOG_ERR, "lock space %s: no quorum, not joining", group_.c_str());
    return Status::kNoQuorum;
  }
  if (quorum_trackstart(quorum_, CS_TRACK_CHANGES) != CS_OK) return Status::kShutdown;
  listener_->on_quorum(true);
  cpg_name n = group_name(group_);
  cs_error_t err;
  auto backoff = std::chrono::milliseconds(1);
  while ((err = cpg_join(cpg_, &n)) == CS_ERR_TRY_AGAIN && Clock::now() < deadline) {
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(100));
  }
  if (err != CS_OK) {
    qb_log(LOG_ERR, "cpg_join %s: error %d", group_.c_str(), err);
    return Status::kShutdown;
  }
  joined_ = true;
  std::lock_guard g(mu_);  // loop_id_ is read under mu_ in send()
  thread_ = std::thread([this] { loop(); });
  loop_id_ = thread_.get_id();
  return Status::kOk;
}

Status CpgTransport::send(std::string op) {
  bool wake;
  // Fast path for a caller with nothing queued ahead: multicast from its own thread and
  // spare the wake-up of the loop thread (one thread switch is a large part of a lock's
  // latency). cpg_mu_ serialises every use of the CPG handle; try_lock keeps callers off
  // it while the loop dispatches, and never blocks, so the lock order cannot invert.
  if (std::this_thread::get_id() != loop_id_ && cpg_mu_.try_lock()) {
    std::lock_guard cpg(cpg_mu_, std::adopt_lock);
    std::lock_guard g(mu_);
    if (stop_ || leaving_) return Status::kShutdown;
    if (queue_.empty() && batch_.empty() && loop_id_ != std::thread::id()) {
      uint32_t len = uint32_t(op.size());
      iovec iov[2] = {{&len, 4}, {op.data(), op.size()}};
      if (cpg_mcast_joined(cpg_, CPG_TYPE_AGREED, iov, 2) == CS_OK) {
        ++stats_->messages;
        ++stats_->ops;
        return Status::kOk;
      }
      // Refused or failed: the loop retries, backs off or reports the failure.
    }
  }
  {
    std::lock_guard g(mu_);
    if (stop_ || leaving_) return Status::kShutdown;
    // The loop flushes after every dispatch, and a non-empty queue already woke it: a
    // syscall per operation would cost more than the operation.
    wake = queue_.empty() && std::this_thread::get_id() != loop_id_;
    queue_.push_back(std::move(op));
  }
  if (wake) poke();
  return Status::kOk;
}

void CpgTransport::leave() {
  {
    std::lock_guard g(mu_);
    leaving_ = true;
  }
  poke();
}

void CpgTransport::poke() {
  uint64_t one = 1;
  if (wake_ >= 0) (void)!write(wake_, &one, sizeof one);
}

void CpgTransport::fail(const char* what, int err) {
  qb_log(LOG_ERR, "%s: error %d; lock space %s fails", what, err, group_.c_str());
  failed_ = true;
  listener_->on_transport_failed(Status::kShutdown);
}

void CpgTransport::loop() {
  int cpg_fd = -1, q_fd = -1;
  cpg_fd_get(cpg_, &cpg_fd);
  quorum_fd_get(quorum_, &q_fd);
  while (!failed_) {
    bool leaving, pending;
    {
      std::lock_guard g(mu_);
      if (stop_) return;
      leaving = leaving_;
      pending = !queue_.empty() || !batch_.empty();
    }
    if (leaving) {
      if (joined_) {
        cpg_name n = group_name(group_);
        std::lock_guard cpg(cpg_mu_);
        cpg_leave(cpg_, &n);
        joined_ = false;
      }
      pending = false;
    }
    int timeout = -1;
    if (pending) {
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(retry_at_ - Clock::now());
      timeout = wait.count() > 0 ? int(wait.count()) + 1 : 0;
    }
    pollfd fds[3] = {{wake_, POLLIN, 0}, {cpg_fd, POLLIN, 0}, {q_fd, POLLIN, 0}};
    if (poll(fds, 3, timeout) < 0 && errno != EINTR) return fail("poll", errno);
    if (fds[0].revents & POLLIN) {
      uint64_t v;
      (void)!read(wake_, &v, sizeof v);
    }
    if (fds[1].revents) {
      std::unique_lock cpg(cpg_mu_);
      cs_error_t err = cpg_dispatch(cpg_, CS_DISPATCH_ALL);
      cpg.unlock();
      if (err != CS_OK && err != CS_ERR_TRY_AGAIN) return fail("cpg_dispatch", err);
    }
    if (fds[2].revents) {
      cs_error_t err = quorum_dispatch(quorum_, CS_DISPATCH_ALL);
      if (err != CS_OK && err != CS_ERR_TRY_AGAIN) return fail("quorum_dispatch", err);
    }
    if (!leaving && pending && Clock::now() >= retry_at_) {
      std::unique_lock cpg(cpg_mu_);
      if (!flush()) return;
    }
  }
}

bool CpgTransport::flush() {
  if (batch_.empty()) {
    std::lock_guard g(mu_);
    while (!queue_.empty() && (batch_.empty() || batch_.size() + queue_.front().size() + 4 <= kMaxBatchBytes)) {
      uint32_t len = uint32_t(queue_.front().size());
      batch_.append(reinterpret_cast<const char*>(&len), 4);
      batch_ += queue_.front();
      queue_.pop_front();
      ++batch_ops_;
    }
  }
  if (batch_.empty()) return true;
  iovec iov{batch_.data(), batch_.size()};
  cs_error_t err = cpg_mcast_joined(cpg_, CPG_TYPE_AGREED, &iov, 1);
  if (err == CS_ERR_TRY_AGAIN) {
    auto now = Clock::now();
    if (refused_since_ == Clock::time_point{}) refused_since_ = now;
    ++stats_->try_again;
    if (now - refused_since_ > kGiveUp) {
      fail("cpg_mcast_joined kept refusing", err);
      return false;
    }
    retry_at_ = now + backoff_;
    backoff_ = std::min(backoff_ * 2, std::chrono::microseconds(kMaxBackoff));
    return true;
  }
  if (err != CS_OK) {
    fail("cpg_mcast_joined", err);
    return false;
  }
  ++stats_->messages;
  stats_->ops += batch_ops_;
  batch_.clear();
  batch_ops_ = 0;
  refused_since_ = {};
  backoff_ = std::chrono::microseconds(100);
  retry_at_ = {};
  return true;
}

void CpgTransport::on_deliver(cpg_handle_t h, const cpg_name*, uint32_t nodeid, uint32_t,
                              void* msg, size_t len) {
  void* ctx = nullptr;
  cpg_context_get(h, &ctx);
  auto* self = static_cast<CpgTransport*>(ctx);
  {
    std::lock_guard g(self->mu_);
    if (self->leaving_) return;
  }
  std::string_view rest(static_cast<const char*>(msg), len);
  while (rest.size() >= 4) {
    uint32_t n;
    std::memcpy(&n, rest.data(), 4);
    rest.remove_prefix(4);
    if (n > rest.size()) break;  // malformed: ignore the tail
    self->listener_->on_deliver(nodeid, rest.substr(0, n));
    rest.remove_prefix(n);
  }
}

void CpgTransport::on_confchg(cpg_handle_t h, const cpg_name*, const cpg_address* members,
                              size_t nmembers, const cpg_address* left, size_t nleft,
                              const cpg_address* joined, size_t njoined) {
  void* ctx = nullptr;
  cpg_context_get(h, &ctx);
  auto* self = static_cast<CpgTransport*>(ctx);
  {
    std::lock_guard g(self->mu_);
    if (self->leaving_) return;
  }
  Membership m;
  for (size_t i = 0; i < nmembers; ++i) m.members.push_back(members[i].nodeid);
  for (size_t i = 0; i < nleft; ++i) m.left.push_back(left[i].nodeid);
  for (size_t i = 0; i < njoined; ++i) m.joined.push_back(joined[i].nodeid);
  // Members left: ask for quorum now rather than trust the last notification, which
  // travels on another connection and may not have arrived yet for this membership.
  int quorate = 0;
  if (nleft && quorum_getquorate(self->quorum_, &quorate) == CS_OK)
    self->listener_->on_quorum(quorate != 0);
  self->listener_->on_membership(m);
}

void CpgTransport::on_quorum(quorum_handle_t h, uint32_t quorate, uint64_t, uint32_t,
                             uint32_t*) {
  const void* ctx = nullptr;
  quorum_context_get(h, &ctx);
  auto* self = static_cast<CpgTransport*>(const_cast<void*>(ctx));
  self->listener_->on_quorum(quorate != 0);
}

}  // namespace

Status make_cpg_transport(const std::string& lockspace, std::unique_ptr<Transport>* out,
                          std::shared_ptr<CpgStats> stats) {
  auto t = std::make_unique<CpgTransport>("lunfs:" + lockspace, std::move(stats));
  if (Status s = t->connect(); s != Status::kOk) return s;
  *out = std::move(t);
  return Status::kOk;
}

Status make_cpg_lockspace(const std::string& lockspace, LockClient* client,
                          std::unique_ptr<LockSpace>* out) {
  std::unique_ptr<Transport> t;
  if (Status s = make_cpg_transport(lockspace, &t); s != Status::kOk) return s;
  *out = make_lockspace(std::move(t), client);
  return Status::kOk;
}

}  // namespace lunfs::dlm

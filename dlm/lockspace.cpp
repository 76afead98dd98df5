// LockSpaceImpl: the local replica of a lock space (see lockspace_impl.h).
//
// Joining: the first membership we see has us in `joined`. If every member is new we found
// an empty table. Otherwise we multicast kHello with a random nonce (it tells this
// incarnation from an earlier one of the same node id, whose snapshot may still be in
// flight) and log the stream. The lowest synced member answers with a snapshot of its table
// as of our kHello, or, if it died first, the next lowest as of a later membership change
// (tagged with how many changes after our kHello). We restore it and replay what we logged
// after that point. If every member that had the table leaves first, the join fails.
//
// Cut-off nodes: a node that lost quorum after having had it (or lost members while
// without it) may have been partitioned away; the quorate side then released its locks
// after recovery. When such a node sees others join (a partition merge) its table is
// stale, so it fails the lock space with kStale rather than merge two histories.
#include "dlm/lockspace_impl.h"

#include <qb/qblog.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <random>

namespace lunfs::dlm {

LockSpaceImpl::LockSpaceImpl(std::unique_ptr<Transport> transport, LockClient* client)
    : transport_(std::move(transport)),
      client_(client),
      self_(transport_->local_node()),
      table_(self_) {}

LockSpaceImpl::~LockSpaceImpl() {
  leave();
  transport_.reset();  // joins the transport's threads; none can call us afterwards
}

Status LockSpaceImpl::start(std::chrono::milliseconds timeout) {
  {
    std::lock_guard g(mu_);
    if (state_ != State::kIdle) return Status::kBusy;
    state_ = State::kJoining;
  }
  Status s = transport_->start(this, timeout);
  if (s != Status::kOk) {
    Actions acts;
    std::lock_guard g(mu_);
    fail(s, acts);
  }
  return s;
}

Status LockSpaceImpl::join(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  if (Status s = start(timeout); s != Status::kOk) return s;
  Actions acts;
  Status result;
  {
    std::unique_lock lk(mu_);
    if (!cv_.wait_until(lk, deadline, [&] { return state_ != State::kJoining; }))
      fail(Status::kTimedOut, acts);
    result = state_ == State::kReady ? Status::kOk : failure_;
  }
  run(acts);
  return result;
}

void LockSpaceImpl::leave() {
  Actions acts;
  {
    std::lock_guard g(mu_);
    if (state_ == State::kFailed || state_ == State::kIdle) {
      state_ = State::kFailed;
      if (failure_ == Status::kOk) failure_ = Status::kShutdown;
      return;
    }
    fail(Status::kShutdown, acts);
  }
  run(acts);
}

LockSpaceImpl::State LockSpaceImpl::state() const {
  std::lock_guard g(mu_);
  return state_;
}

Status LockSpaceImpl::failure() const {
  std::lock_guard g(mu_);
  return failure_;
}

Status LockSpaceImpl::usable() const {
  switch (state_) {
    case State::kReady: return Status::kOk;
    case State::kFailed: return failure_;
    default: return Status::kBusy;
  }
}

// A transport refuses to send only once it is leaving or stopped, that is after fail() has
// ended the lock space and woken every waiter: the protocol's own messages (hello, quorum,
// snapshots, cancels and undos of abandoned requests) have nobody to report that to, and
// ignore it with (void).
Status LockSpaceImpl::send(const Op& op) {
  Status st = transport_->send(encode(op));
  if (st == Status::kOk) stats_.sent[static_cast<size_t>(op.type) % LockSpaceStats::kKinds] += 1;
  return st;
}

LockSpaceStats LockSpaceImpl::stats() const {
  std::lock_guard g(mu_);
  return stats_;
}

bool is_lowest_member(const LockSpace& ls) {
  const std::vector<NodeId> members = ls.members();
  return !members.empty() && *std::min_element(members.begin(), members.end()) == ls.node_id();
}

std::string LockSpaceStats::to_string() const {
  static constexpr const char* kNames[kKinds] = {"other",     "request",  "convert",  "unlock", "cancel",
                                                  "recovery_done", "hello", "snapshot", "quorum", "digest", "plock"};
  std::string out;
  uint64_t sent_total = 0, received_total = 0;
  for (size_t k = 1; k < kKinds; ++k) {
    out += "sent." + std::string(kNames[k]) + " " + std::to_string(sent[k]) + "\n";
    sent_total += sent[k];
  }
  for (size_t k = 1; k < kKinds; ++k) {
    out += "received." + std::string(kNames[k]) + " " + std::to_string(received[k]) + "\n";
    received_total += received[k];
  }
  out += "sent.total " + std::to_string(sent_total) + "\nreceived.total " + std::to_string(received_total) + "\n";
  out += "completions " + std::to_string(completions) + "\nblocking_callbacks " + std::to_string(blocking_callbacks) + "\n";
  out += "divergences " + std::to_string(divergences) + "\n";
  return out;
}

Status LockSpaceImpl::request(std::string_view name, Mode mode, uint32_t flags,
                              uint64_t cookie, LockId* id) {
  std::lock_guard g(mu_);
  if (Status s = usable(); s != Status::kOk) return s;
  Op op{.type = OpType::kRequest, .seq = next_id_, .mode = mode, .flags = flags,
        .cookie = cookie, .name = std::string(name)};
  if (Status s = send(op); s != Status::kOk) return s;
  in_flight_[next_id_] = {Pending::kRequest, cookie, Mode::NL};
  *id = next_id_++;
  return Status::kOk;
}

Status LockSpaceImpl::convert(LockId id, Mode mode, uint32_t flags, const LvbBytes* lvb) {
  std::lock_guard g(mu_);
  if (Status s = usable(); s != Status::kOk) return s;
  if (in_flight_.count(id)) return Status::kBusy;
  const Lock* l = table_.find(self_, id);
  if (!l) return Status::kNotFound;
  Op op{.type = OpType::kConvert, .seq = id, .mode = mode, .flags = flags};
  if (lvb) op.lvb = *lvb;
  if (Status s = send(op); s != Status::kOk) return s;
  in_flight_[id] = {Pending::kConvert, l->cookie, l->grmode};
  return Status::kOk;
}

Status LockSpaceImpl::unlock(LockId id, const LvbBytes* lvb) {
  std::lock_guard g(mu_);
  if (Status s = usable(); s != Status::kOk) return s;
  auto it = in_flight_.find(id);
  if (it != in_flight_.end() && it->second.kind == Pending::kUnlock) return Status::kNotFound;
  if (it == in_flight_.end() && !table_.find(self_, id)) return Status::kNotFound;
  Op op{.type = OpType::kUnlock, .seq = id};
  if (lvb) op.lvb = *lvb;
  if (Status s = send(op); s != Status::kOk) return s;
  // A pending request/conversion still completes (kCancelled) before the release.
  if (it == in_flight_.end()) in_flight_[id] = {Pending::kUnlock, 0, Mode::NL};
  else pending_unlocks_.insert(id);
  return Status::kOk;
}

Status LockSpaceImpl::cancel(LockId id) {
  std::lock_guard g(mu_);
  if (Status s = usable(); s != Status::kOk) return s;
  auto it = in_flight_.find(id);
  if (it == in_flight_.end() || it->second.kind == Pending::kUnlock) return Status::kNotFound;
  return send(Op{.type = OpType::kCancel, .seq = id});
}

Status LockSpaceImpl::lock(std::string_view name, Mode mode, uint32_t flags,
                           std::chrono::milliseconds timeout, LockId* id, Lvb* lvb) {
  std::unique_lock lk(mu_);
  if (Status s = usable(); s != Status::kOk) return s;
  LockId mine = next_id_;
  Op op{.type = OpType::kRequest, .seq = mine, .mode = mode, .flags = flags,
        .name = std::string(name)};
  if (Status s = send(op); s != Status::kOk) return s;
  ++next_id_;
  in_flight_[mine] = {Pending::kRequest, 0, Mode::NL};
  Waiter w;
  waiters_[mine] = &w;
  if (!cv_.wait_for(lk, timeout, [&] { return w.done; })) {
    waiters_.erase(mine);
    abandoned_[mine] = {Pending::kRequest, Mode::NL, false};
    (void)send(Op{.type = OpType::kCancel, .seq = mine});  // see send()
    return Status::kTimedOut;
  }
  waiters_.erase(mine);
  if (w.status == Status::kOk) {
    *id = mine;
    if (lvb) *lvb = w.lvb;
  }
  return w.status;
}

Status LockSpaceImpl::convert_wait(LockId id, Mode mode, uint32_t flags,
                                   std::chrono::milliseconds timeout, Lvb* lvb) {
  std::unique_lock lk(mu_);
  if (Status s = usable(); s != Status::kOk) return s;
  if (in_flight_.count(id)) return Status::kBusy;
  const Lock* l = table_.find(self_, id);
  if (!l) return Status::kNotFound;
  Mode before = l->grmode;
  if (Status s = send(Op{.type = OpType::kConvert, .seq = id, .mode = mode, .flags = flags});
      s != Status::kOk)
    return s;
  in_flight_[id] = {Pending::kConvert, l->cookie, before};
  Waiter w;
  waiters_[id] = &w;
  if (!cv_.wait_for(lk, timeout, [&] { return w.done; })) {
    waiters_.erase(id);
    abandoned_[id] = {Pending::kConvert, before, false};
    (void)send(Op{.type = OpType::kCancel, .seq = id});  // see send()
    return Status::kTimedOut;
  }
  waiters_.erase(id);
  if (w.status == Status::kOk && lvb) *lvb = w.lvb;
  return w.status;
}

Status LockSpaceImpl::recovery_done(const Departure& departure) {
  std::lock_guard g(mu_);
  if (Status s = usable(); s != Status::kOk) return s;
  return send(Op{.type = OpType::kRecoveryDone, .node = departure.node, .departure = departure.id});
}

Status LockSpaceImpl::plock(PlockOp op, PlockCallback done, uint64_t* req) {
  std::lock_guard g(mu_);
  if (Status s = usable(); s != Status::kOk) return s;
  op.req = next_id_;
  if (Status s = send(Op{.type = OpType::kPlock, .blob = encode(op)}); s != Status::kOk) return s;
  plocks_in_flight_[next_id_] = std::move(done);
  *req = next_id_++;
  return Status::kOk;
}

Status LockSpaceImpl::plock_cancel(uint64_t req) {
  std::lock_guard g(mu_);
  if (Status s = usable(); s != Status::kOk) return s;
  if (!plocks_in_flight_.count(req)) return Status::kNotFound;
  return send(Op{.type = OpType::kPlock, .blob = encode(PlockOp{.cmd = PlockCmd::kCancel, .req = req})});
}

bool LockSpaceImpl::plock_held(uint64_t ino, PlockClass cls, uint64_t owner) const {
  std::lock_guard g(mu_);
  return table_.plocks().has(ino, cls, {self_, owner});
}

bool LockSpaceImpl::quorate() const {
  std::lock_guard g(mu_);
  return state_ == State::kReady && table_.quorate();
}

std::vector<NodeId> LockSpaceImpl::members() const {
  std::lock_guard g(mu_);
  return table_.members();
}

std::string LockSpaceImpl::dump() const {
  std::lock_guard g(mu_);
  static constexpr const char* kStates[] = {"idle", "joining", "ready", "failed"};
  std::string head = "node " + std::to_string(self_) + " state " +
                     kStates[static_cast<int>(state_)];
  if (state_ == State::kFailed) head += std::string(" (") + std::string(status_name(failure_)) + ")";
  return head + "\n" + table_.dump();
}

std::string LockSpaceImpl::table_state() const {
  std::lock_guard g(mu_);
  return table_.encode();
}

bool LockSpaceImpl::check(std::string* why) const {
  std::lock_guard g(mu_);
  return table_.check(why);
}

size_t LockSpaceImpl::lock_count() const {
  std::lock_guard g(mu_);
  return table_.lock_count();
}

bool LockSpaceImpl::recovery_pending(const Departure& departure) const {
  std::lock_guard g(mu_);
  return table_.recovery_pending(departure);
}

// ---- the delivered stream ----

void LockSpaceImpl::on_deliver(NodeId from, std::string_view bytes) {
  Actions acts;
  {
    std::lock_guard g(mu_);
    auto op = decode(bytes);
    if (!op || state_ == State::kIdle || state_ == State::kFailed) return;
    if (from != self_) stats_.received[static_cast<size_t>(op->type) % LockSpaceStats::kKinds] += 1;
    if (state_ == State::kJoining) {
      if (!join_seen_) return;
      auto me = std::find_if(op->targets.begin(), op->targets.end(), [&](auto& t) {
        return t.node == self_ && t.nonce == nonce_;
      });
      if (op->type == OpType::kSnapshot && me != op->targets.end()) {
        restore(*op, me->k, acts);
      } else {
        log_.push_back({from, std::move(*op)});
        return;
      }
    }
    if (state_ == State::kReady) apply(from, *op, acts);
  }
  run(acts);
}

void LockSpaceImpl::apply(NodeId from, const Op& op, Actions& acts) {
  if (op.type == OpType::kDigest) return compare_digest(from, op);
  Effects fx;
  table_.apply(from, op, fx);
  process(fx, acts);
  if (op.type == OpType::kSnapshot) send_digest();
}

void LockSpaceImpl::restore(const Op& snapshot, uint32_t k, Actions& acts) {
  if (!table_.decode(snapshot.blob)) return fail(Status::kShutdown, acts);
  state_ = State::kReady;
  // Nodes that left before our snapshot and are not recovered yet: we are told of them as
  // if we had seen them leave, since we may be (or become) the member that recovers them —
  // our own earlier incarnation among them, when we restarted before it was recovered.
  Effects inherited;
  table_.pending_recoveries(inherited);
  // Replay what followed the snapshot's point: our kHello, then k membership changes.
  auto hello = std::find_if(log_.begin(), log_.end(), [&](Logged& e) {
    auto* op = std::get_if<Op>(&e.event);
    return e.from == self_ && op && op->type == OpType::kHello && op->seq == nonce_;
  });
  uint32_t seen = 0;
  for (auto e = hello == log_.end() ? hello : hello + 1; e != log_.end(); ++e) {
    if (auto* m = std::get_if<Membership>(&e->event)) {
      if (++seen > k) apply_membership(*m, acts);
    } else if (seen >= k) {
      apply(e->from, std::get<Op>(e->event), acts);
    }
    if (state_ != State::kReady) return;
  }
  log_.clear();
  Effects still_pending;
  for (Effect& e : inherited)
    if (table_.recovery_pending(std::get<Recovery>(e).departure)) still_pending.push_back(std::move(e));
  process(still_pending, acts);
  announce_quorum();
  cv_.notify_all();
}

void LockSpaceImpl::on_membership(const Membership& m) {
  Actions acts;
  {
    std::lock_guard g(mu_);
    if (state_ == State::kJoining && !join_seen_) {
      join_seen_ = true;
      for (NodeId n : m.members)
        if (std::find(m.joined.begin(), m.joined.end(), n) == m.joined.end())
          sources_.push_back(n);
      if (sources_.empty()) {  // everybody is new: we found the lock space
        table_.found(m.members);
        state_ = State::kReady;
        announce_quorum();
        cv_.notify_all();
      } else {
        std::random_device rd;
        nonce_ = (uint64_t(rd()) << 32 | rd()) | 1;
        (void)send(Op{.type = OpType::kHello, .seq = nonce_});  // see send()
      }
    } else if (state_ == State::kJoining) {
      log_.push_back({0, m});
      for (NodeId n : m.left) std::erase(sources_, n);
      if (sources_.empty()) fail(Status::kShutdown, acts);
    } else if (state_ == State::kReady) {
      apply_membership(m, acts);
    }
  }
  run(acts);
}

void LockSpaceImpl::apply_membership(const Membership& m, Actions& acts) {
  bool others_joined = std::any_of(m.joined.begin(), m.joined.end(),
                                   [&](NodeId n) { return n != self_; });
  if (others_joined && tainted_) return fail(Status::kStale, acts);
  if (!m.left.empty()) lost_member_ = true;
  tainted_ = tainted_ || (!local_quorum_ && (ever_quorate_ || lost_member_));
  Effects fx;
  table_.membership(m.members, m.left, m.joined, fx);
  process(fx, acts);
  announce_quorum();
  send_digest();
}

// Divergence: every replica applies the same stream, so at the same point of it all tables
// must encode equally. After each checkpoint (a membership change or a snapshot: the
// latter is where a joiner's table starts, so it is compared at once) each member sends a
// digest of its table; one that differs from ours is a protocol bug, which would let two
// nodes be granted conflicting locks. It is logged and counted (`lunfs locks --stats`;
// the cluster tests fail on it) rather than acted on: this node cannot tell which replica
// is the wrong one.
void LockSpaceImpl::send_digest() {
  const std::string table = table_.encode();
  const std::vector<NodeId>& members = table_.members();
  const Digest ours{XXH3_64bits(table.data(), table.size()),
                    XXH32(members.data(), members.size() * sizeof(NodeId), 0)};
  digests_[table_.checkpoint()] = ours;
  while (digests_.size() > kDigestsKept) digests_.erase(digests_.begin());
  (void)send(Op{.type = OpType::kDigest, .seq = table_.checkpoint(), .flags = ours.members,  // see send()
                .cookie = ours.table});
}

void LockSpaceImpl::compare_digest(NodeId from, const Op& op) {
  auto ours = digests_.find(op.seq);
  // Nothing to compare: a checkpoint before we had the table (it came in our snapshot), or
  // one the sender passed in another partition (its message reached us after the merge,
  // which made it stale), where the same number names another point of another stream.
  if (from == self_ || ours == digests_.end() || ours->second.members != op.flags ||
      ours->second.table == op.cookie)
    return;
  stats_.divergences += 1;
  qb_log(LOG_CRIT, "lock space: node %u's lock table differs from node %u's at checkpoint %llu "
         "(digest %016llx here, %016llx there): a lock-manager bug, please report it with `lunfs locks` from both",
         self_, from, static_cast<unsigned long long>(op.seq), static_cast<unsigned long long>(ours->second.table),
         static_cast<unsigned long long>(op.cookie));
}

// The lowest member speaks for quorum; after every membership change it restates it, so a
// new lowest member takes over and joiners hear it.
void LockSpaceImpl::announce_quorum() {
  const auto& ms = table_.members();
  if (state_ == State::kReady && !ms.empty() && ms.front() == self_)
    (void)send(Op{.type = OpType::kQuorum, .seq = table_.epoch(),  // see send()
                  .flags = local_quorum_ ? 1u : 0u});
}

void LockSpaceImpl::on_quorum(bool quorate) {
  Actions acts;
  {
    std::lock_guard g(mu_);
    local_quorum_ = quorate;
    ever_quorate_ = ever_quorate_ || quorate;
    tainted_ = tainted_ || (!quorate && (ever_quorate_ || lost_member_));
    if (state_ == State::kReady) {
      announce_quorum();
      if (client_) acts.push_back([c = client_, quorate] { c->quorum(quorate); });
    }
  }
  run(acts);
}

void LockSpaceImpl::on_transport_failed(Status why) {
  Actions acts;
  {
    std::lock_guard g(mu_);
    if (state_ != State::kFailed) fail(why, acts);
  }
  run(acts);
}

void LockSpaceImpl::fail(Status why, Actions& acts) {
  state_ = State::kFailed;
  failure_ = why;
  for (auto& [id, f] : in_flight_) {
    if (f.kind == Pending::kUnlock) continue;
    if (auto w = waiters_.find(id); w != waiters_.end()) {
      w->second->done = true;
      w->second->status = why;
    } else if (!abandoned_.count(id) && client_) {
      acts.push_back([c = client_, cookie = f.cookie, id = id, why, mode = f.before] {
        c->completion(cookie, id, why, mode, Lvb{});
      });
    }
  }
  in_flight_.clear();
  for (auto& [req, done] : plocks_in_flight_)
    acts.push_back([done = std::move(done), req = req] { done(PlockResult{req, ENOLCK, std::nullopt}); });
  plocks_in_flight_.clear();
  pending_unlocks_.clear();
  abandoned_.clear();
  log_.clear();
  if (client_) acts.push_back([c = client_, why] { c->failed(why); });
  transport_->leave();
  cv_.notify_all();
}

void LockSpaceImpl::process(Effects& fx, Actions& acts) {
  for (Effect& e : fx) {
    if (auto* c = std::get_if<Completion>(&e)) {
      stats_.completions += 1;
      on_completion(*c, acts);
    } else if (auto* b = std::get_if<Blocking>(&e)) {
      stats_.blocking_callbacks += 1;
      if (client_) acts.push_back([c = client_, b = *b] { c->blocking(b.cookie, b.id, b.requested); });
    } else if (auto* r = std::get_if<Recovery>(&e)) {
      if (client_) acts.push_back([c = client_, r = std::move(*r)] { c->recover(r.departure, r.held); });
    } else if (auto* r = std::get_if<Recovered>(&e)) {
      if (client_) acts.push_back([c = client_, d = r->departure] { c->recovered(d); });
    } else if (auto* r = std::get_if<Released>(&e)) {
      in_flight_.erase(r->id);
      pending_unlocks_.erase(r->id);
    } else if (auto* p = std::get_if<PlockDone>(&e)) {
      auto it = plocks_in_flight_.find(p->result.req);
      if (it == plocks_in_flight_.end()) continue;  // not ours to answer: an earlier incarnation's
      acts.push_back([done = std::move(it->second), r = std::move(p->result)] { done(r); });
      plocks_in_flight_.erase(it);
    } else if (auto* s = std::get_if<SendSnapshot>(&e)) {
      // see send()
      (void)send(Op{.type = OpType::kSnapshot, .targets = s->targets, .blob = table_.encode()});
    }
  }
}

void LockSpaceImpl::on_completion(const Completion& c, Actions& acts) {
  auto f = in_flight_.find(c.id);
  if (f != in_flight_.end() && f->second.kind != Pending::kUnlock) {
    // A completion that came with an unlock in flight: the lock now waits for its release.
    if (pending_unlocks_.count(c.id)) f->second = {Pending::kUnlock, 0, Mode::NL};
    else in_flight_.erase(f);
  }
  if (auto w = waiters_.find(c.id); w != waiters_.end()) {
    w->second->done = true;
    w->second->status = c.status;
    w->second->lvb = c.lvb;
    cv_.notify_all();
    return;
  }
  if (auto a = abandoned_.find(c.id); a != abandoned_.end()) {
    Abandoned ab = a->second;
    abandoned_.erase(a);
    if (ab.silent || c.status != Status::kOk) return;
    if (ab.kind == Pending::kRequest) {
      (void)send(Op{.type = OpType::kUnlock, .seq = c.id});  // see send()
      in_flight_[c.id] = {Pending::kUnlock, 0, Mode::NL};
    } else {
      (void)send(Op{.type = OpType::kConvert, .seq = c.id, .mode = ab.before});  // see send()
      in_flight_[c.id] = {Pending::kConvert, c.cookie, c.mode};
      abandoned_[c.id] = {Pending::kConvert, ab.before, true};
    }
    return;
  }
  if (client_)
    acts.push_back([cl = client_, c] { cl->completion(c.cookie, c.id, c.status, c.mode, c.lvb); });
}

void LockSpaceImpl::run(Actions& acts) {
  for (auto& a : acts) a();
  acts.clear();
}

std::unique_ptr<LockSpace> make_lockspace(std::unique_ptr<Transport> transport,
                                          LockClient* client) {
  return std::make_unique<LockSpaceImpl>(std::move(transport), client);
}

}  // namespace lunfs::dlm

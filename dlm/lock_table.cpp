// The replicated lock table's grant logic (see lock_table.h for the rules).
#include "dlm/lock_table.h"

#include <algorithm>

namespace lunfs::dlm {

void LockTable::found(const std::vector<NodeId>& members) {
  members_ = members;
  std::sort(members_.begin(), members_.end());
}

Lock* LockTable::lookup(NodeId node, uint64_t seq) {
  auto it = locks_.find(Key{seq, node, 0});
  return it == locks_.end() ? nullptr : &it->second;
}

const Lock* LockTable::find(NodeId node, LockId seq) const {
  auto it = locks_.find(Key{seq, node, 0});
  return it == locks_.end() ? nullptr : &it->second;
}

Resource& LockTable::resource(const std::string& name) {
  auto [it, fresh] = resources_.try_emplace(name);
  if (fresh) it->second.name = &it->first;
  return it->second;
}

void LockTable::destroy(Lock* l) {
  Resource* r = l->res;
  switch (l->queue) {
    case Queue::kGranted: r->granted.remove(l); break;
    case Queue::kConvert: r->convert.remove(l); break;
    case Queue::kWait: r->wait.remove(l); break;
    case Queue::kNone: break;
  }
  --r->nlocks;
  locks_.erase(Key{l->seq, l->node, l->gen});
  // An unused resource is forgotten with its LVB: a node that wants an LVB kept holds NL.
  if (r->unused()) resources_.erase(resources_.find(*r->name));
}

void LockTable::complete(Lock* l, Status st, Effects& fx) {
  if (l->node != self_) return;
  Completion c{l->seq, l->cookie, st, l->grmode, {}};
  if (st == Status::kOk) c.lvb = Lvb{l->res->lvb, l->res->lvb_valid};
  fx.emplace_back(c);
}

void LockTable::grant(Lock* l, Effects& fx) {
  Resource& r = *l->res;
  if (l->queue == Queue::kConvert) r.convert.remove(l);
  if (l->queue == Queue::kWait) r.wait.remove(l);
  if (l->queue != Queue::kGranted) r.granted.push_back(l);
  l->queue = Queue::kGranted;
  l->grmode = l->rqmode;
  l->bast_sent = false;
  complete(l, Status::kOk, fx);
}

void LockTable::write_lvb(Lock* l, const std::optional<LvbBytes>& lvb) {
  if (!lvb || !writes_lvb(l->grmode)) return;
  l->res->lvb = *lvb;
  l->res->lvb_valid = true;
}

void LockTable::grant_pending(Resource& r, Effects& fx) {
  if (!quorate_) return;
  while (Lock* h = r.convert.front()) {
    if (r.conflicts(h->rqmode, h)) {
      for (Lock* v = r.convert.after(h); v;) {
        Lock* next = r.convert.after(v);
        if (!compatible(v->grmode, h->rqmode)) {
          r.convert.remove(v);
          r.granted.push_back(v);
          v->queue = Queue::kGranted;
          v->rqmode = v->grmode;
          complete(v, Status::kDeadlock, fx);
        }
        v = next;
      }
      return;  // h still waits (for the deadlock victims' owners to give way)
    }
    grant(h, fx);
  }
  while (Lock* w = r.wait.front()) {
    if (r.conflicts(w->rqmode, w)) return;
    grant(w, fx);
  }
}

void LockTable::send_basts(Resource& r, Effects& fx) {
  for (const LockQueue* waiters : {&r.convert, &r.wait})
    for (Lock* w = waiters->front(); w; w = waiters->after(w))
      for (LockQueue* holders : {&r.granted, &r.convert})
        for (Lock* g = holders->front(); g; g = holders->after(g)) {
          if (g == w || g->orphan || g->bast_sent || compatible(g->grmode, w->rqmode)) continue;
          g->bast_sent = true;
          if (g->node == self_) fx.emplace_back(Blocking{g->seq, g->cookie, w->rqmode});
        }
}

void LockTable::bast_holders_in_the_way(Resource& r, const Lock* requester, Mode mode, Effects& fx) {
  for (LockQueue* holders : {&r.granted, &r.convert})
    for (Lock* g = holders->front(); g; g = holders->after(g)) {
      if (g == requester || g->orphan || compatible(g->grmode, mode)) continue;
      if (g->node == self_) fx.emplace_back(Blocking{g->seq, g->cookie, mode});
    }
}

void LockTable::update(Resource& r, Effects& fx) {
  grant_pending(r, fx);
  if (!r.convert.empty() || !r.wait.empty()) send_basts(r, fx);
}

void LockTable::apply(NodeId from, const Op& op, Effects& fx) {
  switch (op.type) {
    case OpType::kRequest: on_request(from, op, fx); break;
    case OpType::kConvert: on_convert(from, op, fx); break;
    case OpType::kUnlock: on_unlock(from, op, fx); break;
    case OpType::kCancel: on_cancel(from, op, fx); break;
    case OpType::kRecoveryDone: recovery_done(Departure{op.node, op.departure}, fx); break;
    case OpType::kHello: {
      auto j = unsynced_.find(from);
      if (j == unsynced_.end() || j->second.nonce != 0) break;
      j->second = {op.seq, 0};
      snapshot_for({{from, op.seq, 0}}, fx);
      break;
    }
    case OpType::kSnapshot:
      ++checkpoint_;
      for (auto t : op.targets)
        if (auto j = unsynced_.find(t.node); j != unsynced_.end() && j->second.nonce == t.nonce)
          unsynced_.erase(j);
      break;
    case OpType::kQuorum:
      if (!members_.empty() && from == members_.front() && op.seq == epoch_)
        set_quorate(op.flags != 0, fx);
      break;
    case OpType::kDigest:  // about the table, not part of it: LockSpaceImpl compares
      break;
    case OpType::kPlock:
      // A member sends only what it encoded itself; one that does not decode is ignored
      // on every node alike.
      if (auto p = decode_plock(op.blob)) {
        std::vector<PlockResult> done;
        plocks_.apply(from, *p, quorate_, done);
        apply_plocks(done, fx);
      }
      break;
  }
}

void LockTable::apply_plocks(std::vector<PlockResult>& done, Effects& fx) {
  for (PlockResult& r : done) fx.emplace_back(PlockDone{std::move(r)});
}

void LockTable::on_request(NodeId from, const Op& op, Effects& fx) {
  auto [it, fresh] = locks_.try_emplace(Key{op.seq, from, 0});
  if (!fresh) return;  // a node never reuses a lock id; ignore a duplicate
  Lock* l = &it->second;
  Resource& r = resource(op.name);
  l->res = &r;
  l->cookie = op.cookie;
  l->seq = op.seq;
  l->node = from;
  l->rqmode = op.mode;
  l->noqueue = op.flags & kNoQueue;
  ++r.nlocks;
  bool grantable = quorate_ && r.convert.empty() && r.wait.empty() && !r.conflicts(op.mode, l);
  if (grantable) return grant(l, fx);
  if (l->noqueue) {
    if (quorate_ && (op.flags & kNoQueueBast)) bast_holders_in_the_way(r, l, op.mode, fx);
    complete(l, quorate_ ? Status::kAgain : Status::kNoQuorum, fx);
    return destroy(l);
  }
  l->queue = Queue::kWait;
  r.wait.push_back(l);
  send_basts(r, fx);
}

void LockTable::on_convert(NodeId from, const Op& op, Effects& fx) {
  Lock* l = lookup(from, op.seq);
  if (!l || l->queue != Queue::kGranted) return;  // the owner checks this before sending
  Resource& r = *l->res;
  if (is_down_conversion(l->grmode, op.mode)) {
    write_lvb(l, op.lvb);
    l->rqmode = op.mode;
    grant(l, fx);
    return update(r, fx);
  }
  l->rqmode = op.mode;
  if (quorate_ && r.convert.empty() && !r.conflicts(op.mode, l)) {
    grant(l, fx);
    return update(r, fx);  // e.g. CW->PR: waiting PR requests are compatible now
  }
  if (op.flags & kNoQueue) {
    if (quorate_ && (op.flags & kNoQueueBast)) bast_holders_in_the_way(r, l, op.mode, fx);
    l->rqmode = l->grmode;
    return complete(l, quorate_ ? Status::kAgain : Status::kNoQuorum, fx);
  }
  r.granted.remove(l);
  l->queue = Queue::kConvert;
  r.convert.push_back(l);
  update(r, fx);
}

void LockTable::on_unlock(NodeId from, const Op& op, Effects& fx) {
  Lock* l = lookup(from, op.seq);
  if (!l) return;
  Resource& r = *l->res;
  if (l->queue == Queue::kWait || l->queue == Queue::kConvert) complete(l, Status::kCancelled, fx);
  if (l->queue != Queue::kWait) write_lvb(l, op.lvb);
  if (from == self_) fx.emplace_back(Released{op.seq});
  bool last = r.nlocks == 1;
  destroy(l);
  if (!last) update(r, fx);
}

void LockTable::on_cancel(NodeId from, const Op& op, Effects& fx) {
  Lock* l = lookup(from, op.seq);
  if (!l) return;
  Resource& r = *l->res;
  if (l->queue == Queue::kWait) {
    complete(l, Status::kCancelled, fx);
    bool last = r.nlocks == 1;
    destroy(l);
    if (!last) update(r, fx);
  } else if (l->queue == Queue::kConvert) {
    r.convert.remove(l);
    r.granted.push_back(l);
    l->queue = Queue::kGranted;
    l->rqmode = l->grmode;
    complete(l, Status::kCancelled, fx);
    update(r, fx);
  }
  // Granted already: the cancel lost the race with the grant; the owner has its completion.
}

void LockTable::set_quorate(bool quorate, Effects& fx) {
  if (quorate == quorate_) return;
  quorate_ = quorate;
  if (!quorate) return;
  std::vector<PlockResult> done;
  plocks_.regain_quorum(done);
  apply_plocks(done, fx);
  std::vector<Resource*> rs;
  for (auto& [name, r] : resources_) rs.push_back(&r);
  // Canonical order keeps the completion order identical on every node.
  std::sort(rs.begin(), rs.end(), [](auto* a, auto* b) { return *a->name < *b->name; });
  for (Resource* r : rs) update(*r, fx);
}

bool LockTable::check(std::string* why) const {
  size_t n = 0;
  for (const auto& [name, r] : resources_) {
    uint32_t count = 0;
    const std::pair<const LockQueue*, Queue> qs[] = {
        {&r.granted, Queue::kGranted}, {&r.convert, Queue::kConvert}, {&r.wait, Queue::kWait}};
    for (auto [q, tag] : qs)
      for (const Lock* l = q->front(); l; l = q->after(l)) {
        ++count;
        if (l->queue != tag || l->res != &r) return *why = "queue tag mismatch on " + name, false;
        if (tag != Queue::kWait && r.conflicts(l->grmode, l))
          return *why = "incompatible granted modes on " + name, false;
      }
    if (count != r.nlocks || count == 0) return *why = "lock count mismatch on " + name, false;
    n += count;
  }
  if (n != locks_.size()) return *why = "lock map and queues disagree", false;
  return plocks_.check(why);
}

}  // namespace lunfs::dlm

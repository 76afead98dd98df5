// Membership changes in the replicated table: a node that leaves keeps its granted locks
// (as orphans) until the file system says its journal is recovered; its waiting requests
// and pending conversions vanish; LVBs it could have written (PW/EX) become invalid.
// Joiners are tracked until a snapshot of the table reaches them.
#include <algorithm>

#include "dlm/lock_table.h"

namespace lunfs::dlm {

void LockTable::membership(const std::vector<NodeId>& members, const std::vector<NodeId>& left,
                           const std::vector<NodeId>& joined, Effects& fx) {
  // Members left: until the lowest member restates quorum for the new membership (its
  // kQuorum follows this change in the stream), assume it is lost. Otherwise a partitioned
  // minority would go on granting from the old flag until that message arrives.
  if (!left.empty()) quorate_ = false;
  ++epoch_;
  ++checkpoint_;
  std::vector<NodeId> sorted_left = left;
  std::sort(sorted_left.begin(), sorted_left.end());
  for (NodeId n : sorted_left) {
    unsynced_.erase(n);
    orphan_node(n, fx);
    // Byte-range locks need no recovery: the file data they guard stays behind the
    // node's orphaned glocks until its journal is replayed (docs/cluster.md, "File locks").
    plocks_.drop_node(n);
  }
  std::vector<SnapshotTarget> targets;
  for (auto& [node, j] : unsynced_)
    if (j.nonce) targets.push_back({node, j.nonce, ++j.k});
  for (NodeId n : joined) unsynced_[n] = {0, 0};
  members_ = members;
  std::sort(members_.begin(), members_.end());
  snapshot_for(std::move(targets), fx);
}

// The lowest synced member hands its table over; if it dies first, the next membership
// change makes the new lowest one send it.
void LockTable::snapshot_for(std::vector<SnapshotTarget> targets, Effects& fx) {
  if (targets.empty()) return;
  auto sender = std::find_if(members_.begin(), members_.end(),
                             [&](NodeId n) { return !unsynced_.count(n); });
  if (sender == members_.end() || *sender != self_) return;
  std::sort(targets.begin(), targets.end());
  fx.emplace_back(SendSnapshot{std::move(targets)});
}

void LockTable::orphan_node(NodeId node, Effects& fx) {
  std::vector<Key> keys;
  for (auto& [key, l] : locks_)
    if (l.node == node && !l.orphan) keys.push_back(key);
  // Canonical order: equal tables must stay equal, and hooks list locks identically.
  std::sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) { return a.seq < b.seq; });
  const uint32_t first_gen = orphan_gen_ + 1;
  std::vector<HeldLock> held;
  std::vector<std::string> touched;
  for (const Key& key : keys) {
    Lock* l = &locks_.find(key)->second;
    Resource& r = *l->res;
    touched.push_back(*r.name);
    if (l->queue == Queue::kWait) {
      destroy(l);
      continue;
    }
    if (l->queue == Queue::kConvert) {
      r.convert.remove(l);
      r.granted.push_back(l);
      l->queue = Queue::kGranted;
      l->rqmode = l->grmode;
    }
    if (writes_lvb(l->grmode)) r.lvb_valid = false;
    held.push_back({*r.name, l->grmode});
    auto nh = locks_.extract(key);
    nh.key().gen = nh.mapped().gen = ++orphan_gen_;
    nh.mapped().orphan = true;
    locks_.insert(std::move(nh));  // node-based map: `l` and the queue links stay valid
  }
  const Departure departure{node, ++orphan_gen_};
  pending_recovery_[departure] = first_gen;
  fx.emplace_back(Recovery{departure, std::move(held)});
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (const auto& name : touched) {
    auto it = resources_.find(name);
    if (it != resources_.end()) update(it->second, fx);
  }
}

// The orphans of one departure: its node's, numbered first..id.
std::vector<const Lock*> LockTable::orphans_of(const Departure& d, uint32_t first_gen) const {
  std::vector<const Lock*> out;
  for (const auto& [key, l] : locks_)
    if (l.node == d.node && l.orphan && l.gen >= first_gen && l.gen < d.id) out.push_back(&l);
  std::sort(out.begin(), out.end(), [](const Lock* a, const Lock* b) { return a->gen < b->gen; });
  return out;
}

void LockTable::pending_recoveries(Effects& fx) const {
  for (const auto& [departure, first_gen] : pending_recovery_) {
    Recovery rec{departure, {}};
    for (const Lock* l : orphans_of(departure, first_gen)) rec.held.push_back({*l->res->name, l->grmode});
    fx.emplace_back(std::move(rec));
  }
}

void LockTable::recovery_done(const Departure& departure, Effects& fx) {
  auto pending = pending_recovery_.find(departure);
  if (pending == pending_recovery_.end()) return;
  std::vector<const Lock*> orphans = orphans_of(departure, pending->second);
  pending_recovery_.erase(pending);
  std::vector<std::string> touched;
  for (const Lock* l : orphans) {
    touched.push_back(*l->res->name);
    destroy(&locks_.find(Key{l->seq, l->node, l->gen})->second);
  }
  fx.emplace_back(Recovered{departure});
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (const auto& name : touched) {
    auto it = resources_.find(name);
    if (it != resources_.end()) update(it->second, fx);
  }
}

}  // namespace lunfs::dlm

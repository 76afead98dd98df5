// The replicated lock table: a deterministic state machine that every node of a lock space
// feeds with the same agreed-order stream of operations and membership changes, so that
// every node reaches the same grant decisions (no master, no directory). It knows nothing
// of threads or transports; LockSpaceImpl drives it under its mutex.
//
// Grant rules (Linux DLM semantics):
//  - a new request is granted when compatible with every granted mode and nothing waits
//    ahead of it (FIFO per resource; conversions go before new requests);
//  - conversions are granted in arrival order; a down-conversion is granted at once;
//  - conversion deadlock: when the first conversion in the queue is blocked by the granted
//    mode of a later conversion, that later one can never go first (FIFO) and its owner
//    waits for it, so the later conversion fails with kDeadlock and keeps its granted mode;
//  - without quorum nothing is granted (down-conversions and unlocks still apply). Quorum
//    is part of the stream: only the lowest member's kQuorum operations change it, and only
//    for the membership they were sent in (a delayed one from an older membership would
//    let a partitioned minority grant), so every node stops and resumes granting at the
//    same point;
//  - a holder is told once (blocking callback) that someone waits for a conflicting mode.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "dlm/plock_table.h"
#include "dlm/resource.h"
#include "dlm/types.h"
#include "dlm/wire.h"

namespace lunfs::dlm {

// What applying an event means for the local node, in stream order.
struct Completion {
  LockId id;
  uint64_t cookie;
  Status status;
  Mode mode;  // granted mode after the operation (meaningless if the lock is gone)
  Lvb lvb;
};
struct Blocking {
  LockId id;
  uint64_t cookie;
  Mode requested;
};
struct Recovery {  // a node left holding `held`; they stay held until kRecoveryDone
  Departure departure;
  std::vector<HeldLock> held;
};
struct Recovered {
  Departure departure;
};
struct Released {  // our own unlock has been applied
  LockId id;
};
struct SendSnapshot {  // we are the lowest synced member: send our table to these joiners
  std::vector<SnapshotTarget> targets;
};
struct PlockDone {  // a byte-range lock operation of ours was decided
  PlockResult result;
};
using Effect = std::variant<Completion, Blocking, Recovery, Recovered, Released, SendSnapshot, PlockDone>;
using Effects = std::vector<Effect>;

class LockTable {
 public:
  explicit LockTable(NodeId self) : self_(self) {}
  LockTable(const LockTable&) = delete;
  LockTable& operator=(const LockTable&) = delete;

  // Start an empty table: every member of this first membership is new.
  void found(const std::vector<NodeId>& members);
  void apply(NodeId from, const Op& op, Effects& fx);
  void membership(const std::vector<NodeId>& members, const std::vector<NodeId>& left,
                  const std::vector<NodeId>& joined, Effects& fx);

  // Replicated state (everything but `self`), canonical: equal tables encode equally.
  std::string encode() const;
  bool decode(std::string_view blob);

  std::string dump() const;
  // Safety: no two incompatible granted modes on one resource; queues consistent.
  bool check(std::string* why) const;

  bool quorate() const { return quorate_; }
  const PlockTable& plocks() const { return plocks_; }
  const std::vector<NodeId>& members() const { return members_; }
  const Lock* find(NodeId node, LockId seq) const;
  size_t lock_count() const { return locks_.size(); }
  size_t resource_count() const { return resources_.size(); }
  bool synced(NodeId n) const { return !unsynced_.count(n); }
  bool recovery_pending(const Departure& d) const { return pending_recovery_.count(d) != 0; }
  // A Recovery effect for every departure still waiting for recovery_done, with the locks
  // it left (what a joiner must be told: it may become the member that recovers them).
  void pending_recoveries(Effects& fx) const;
  // Membership changes applied so far: a kQuorum states quorum for one epoch only.
  uint64_t epoch() const { return epoch_; }
  // Membership changes and snapshots applied so far: the points of the stream after which
  // the members compare their tables (lockspace.cpp, "Divergence").
  uint64_t checkpoint() const { return checkpoint_; }

 private:
  struct Key {
    uint64_t seq;
    NodeId node;
    uint32_t gen;  // 0 while the owner lives; a table-wide number once orphaned (Departure)
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept {
      return std::hash<uint64_t>()(k.seq * 0x9e3779b97f4a7c15ull ^ (uint64_t(k.node) << 32 | k.gen));
    }
  };

  Lock* lookup(NodeId node, uint64_t seq);
  Resource& resource(const std::string& name);
  void destroy(Lock* l);
  void grant(Lock* l, Effects& fx);
  void complete(Lock* l, Status st, Effects& fx);
  void update(Resource& r, Effects& fx);
  void grant_pending(Resource& r, Effects& fx);
  void send_basts(Resource& r, Effects& fx);
  // A refused NOQUEUE request with kNoQueueBast: one callback to each holder in its way.
  void bast_holders_in_the_way(Resource& r, const Lock* requester, Mode mode, Effects& fx);
  void write_lvb(Lock* l, const std::optional<LvbBytes>& lvb);

  void on_request(NodeId from, const Op& op, Effects& fx);
  void on_convert(NodeId from, const Op& op, Effects& fx);
  void on_unlock(NodeId from, const Op& op, Effects& fx);
  void on_cancel(NodeId from, const Op& op, Effects& fx);
  // recovery.cpp
  void orphan_node(NodeId node, Effects& fx);
  void recovery_done(const Departure& departure, Effects& fx);
  std::vector<const Lock*> orphans_of(const Departure& departure, uint32_t first_gen) const;
  void set_quorate(bool quorate, Effects& fx);

  NodeId self_;
  bool quorate_ = false;
  uint64_t epoch_ = 0;
  uint64_t checkpoint_ = 0;
  uint32_t orphan_gen_ = 0;
  std::vector<NodeId> members_;                   // sorted
  struct Joiner {
    uint64_t nonce;  // 0 until its kHello arrives
    uint32_t k;      // membership changes since its kHello
  };
  void snapshot_for(std::vector<SnapshotTarget> targets, Effects& fx);
  std::unordered_map<NodeId, Joiner> unsynced_;  // members without the table yet
  // Departures not yet recovery_done, each with the first orphan generation of its locks:
  // orphan_node numbers a departure's locks from first_gen on, and its id is one past the last
  // (so that every departure has an id of its own, also one that held nothing).
  std::map<Departure, uint32_t> pending_recovery_;
  std::unordered_map<std::string, Resource> resources_;
  std::unordered_map<Key, Lock, KeyHash> locks_;
  PlockTable plocks_{self_};  // fcntl/flock locks ride the same stream (decision 12)
  void apply_plocks(std::vector<PlockResult>& done, Effects& fx);
};

}  // namespace lunfs::dlm

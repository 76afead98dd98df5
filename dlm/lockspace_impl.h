// LockSpaceImpl: a LockSpace over any Transport. It owns the local replica of the lock
// table, feeds it the delivered stream under one mutex, turns its effects into client
// callbacks (run after the mutex is released), joins (snapshot hand-over), and fails the
// lock space cleanly when the transport dies or the node was cut off.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "dlm/lock_table.h"
#include "dlm/lockspace.h"

namespace lunfs::dlm {

class LockSpaceImpl final : public LockSpace, private TransportListener {
 public:
  enum class State { kIdle, kJoining, kReady, kFailed };

  LockSpaceImpl(std::unique_ptr<Transport> transport, LockClient* client);
  ~LockSpaceImpl() override;

  // LockSpace
  Status join(std::chrono::milliseconds timeout) override;
  void leave() override;
  Status request(std::string_view name, Mode mode, uint32_t flags, uint64_t cookie,
                 LockId* id) override;
  Status convert(LockId id, Mode mode, uint32_t flags, const LvbBytes* lvb = nullptr) override;
  Status unlock(LockId id, const LvbBytes* lvb = nullptr) override;
  Status cancel(LockId id) override;
  Status lock(std::string_view name, Mode mode, uint32_t flags,
              std::chrono::milliseconds timeout, LockId* id, Lvb* lvb = nullptr) override;
  Status convert_wait(LockId id, Mode mode, uint32_t flags, std::chrono::milliseconds timeout,
                      Lvb* lvb = nullptr) override;
  Status recovery_done(const Departure& departure) override;
  Status plock(PlockOp op, PlockCallback done, uint64_t* req) override;
  Status plock_cancel(uint64_t req) override;
  bool plock_held(uint64_t ino, PlockClass cls, uint64_t owner) const override;
  NodeId node_id() const override { return self_; }
  bool quorate() const override;
  std::vector<NodeId> members() const override;
  std::string dump() const override;
  LockSpaceStats stats() const override;

  // Begin joining; returns once the transport has joined the group (at once for the
  // in-process bus, whose tests drive delivery themselves).
  Status start(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  State state() const;
  Status failure() const;
  // Canonical encoding of the replicated table (equal on nodes at the same stream point).
  std::string table_state() const;
  bool check(std::string* why) const;
  size_t lock_count() const;
  bool recovery_pending(const Departure& departure) const;

 private:
  using Actions = std::vector<std::function<void()>>;
  enum class Pending : uint8_t { kRequest, kConvert, kUnlock };
  struct InFlight {
    Pending kind;
    uint64_t cookie;
    Mode before;  // granted mode before a conversion
  };
  struct Waiter {
    bool done = false;
    Status status = Status::kOk;
    Lvb lvb;
  };
  // A synchronous call that timed out: undo a late grant. `silent` swallows the undo's own
  // completion.
  struct Abandoned {
    Pending kind;
    Mode before;
    bool silent;
  };
  struct Logged {  // stream events a joiner receives before its snapshot
    NodeId from;
    std::variant<Op, Membership> event;
  };

  // TransportListener
  void on_deliver(NodeId from, std::string_view bytes) override;
  void on_membership(const Membership& m) override;
  void on_quorum(bool quorate) override;
  void on_transport_failed(Status why) override;

  Status usable() const;
  Status send(const Op& op);
  void apply(NodeId from, const Op& op, Actions& acts);
  void apply_membership(const Membership& m, Actions& acts);
  void restore(const Op& snapshot, uint32_t k, Actions& acts);
  void process(Effects& fx, Actions& acts);
  void on_completion(const Completion& c, Actions& acts);
  void announce_quorum();
  void send_digest();
  void compare_digest(NodeId from, const Op& op);
  void fail(Status why, Actions& acts);
  void run(Actions& acts);

  std::unique_ptr<Transport> transport_;
  LockClient* client_;
  const NodeId self_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::kIdle;
  Status failure_ = Status::kOk;
  LockTable table_;
  LockId next_id_ = 1;
  std::unordered_map<LockId, InFlight> in_flight_;
  std::unordered_map<LockId, Waiter*> waiters_;
  std::unordered_map<LockId, Abandoned> abandoned_;
  std::unordered_set<LockId> pending_unlocks_;  // unlocked while a request was in flight
  std::unordered_map<uint64_t, PlockCallback> plocks_in_flight_;

  // Joining: members that had the table when we joined, and what we saw since.
  bool join_seen_ = false;
  uint64_t nonce_ = 0;
  std::vector<NodeId> sources_;
  std::vector<Logged> log_;

  // Quorum as this node's transport sees it, and whether this node may have been cut off
  // from the quorate part of the cluster (then a merge must not keep our table).
  bool local_quorum_ = false;
  bool ever_quorate_ = false;
  bool lost_member_ = false;
  bool tainted_ = false;
  LockSpaceStats stats_;  // guarded by mu_, like everything that counts into it
  static constexpr size_t kDigestsKept = 64;
  struct Digest {  // of our table right after a checkpoint, and of its members
    uint64_t table;
    uint32_t members;
  };
  std::map<uint64_t, Digest> digests_;  // by checkpoint
};

}  // namespace lunfs::dlm

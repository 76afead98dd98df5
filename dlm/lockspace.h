// The lock manager as the file system sees it: one LockSpace per mounted file system,
// asynchronous requests with completion and blocking callbacks, and a recovery hook.
// No Corosync or libqb types appear here; make_cpg_lockspace() (cpg_transport.h) and
// the in-process bus (inproc_transport.h) build lock spaces over a Transport.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dlm/plock_table.h"
#include "dlm/transport.h"
#include "dlm/types.h"

namespace lunfs::dlm {

// Callbacks run on the transport's delivery thread, without any lock-space lock held:
// they may call back into the LockSpace. They must not block for long.
class LockClient {
 public:
  virtual ~LockClient() = default;
  // A request or conversion finished. `mode` is the granted mode now; `lvb` is the
  // resource's value block on success.
  virtual void completion(uint64_t cookie, LockId id, Status status, Mode mode,
                          const Lvb& lvb) = 0;
  // Someone waits for `requested`, which conflicts with our granted mode on `id`. Sent once
  // per grant: after the next grant or conversion of `id` it may come again. Remember it
  // until acted upon: if a conversion of `id` is in flight and gets refused, no new one
  // comes.
  virtual void blocking(uint64_t cookie, LockId id, Mode requested) = 0;
  // A node left the lock space (`departure`) while holding `held`. Those locks stay held
  // (and block others) until some member calls recovery_done(departure), after fencing the
  // node and replaying its journal. Called on every member, at the same point of the
  // message stream. The locks stay held until the call is applied: if the member doing the
  // recovery dies first, another must finish it.
  virtual void recover(const Departure& departure, const std::vector<HeldLock>& held) = 0;
  virtual void recovered(const Departure& /*departure*/) {}
  virtual void quorum(bool /*quorate*/) {}
  // The lock space failed for good (kShutdown: corosync gone; kStale: we were cut off
  // from the quorate part of the cluster). Every pending request completed with `why`.
  virtual void failed(Status /*why*/) {}
};

// What one node's lock space has sent and received since it joined, for `lunfs locks
// --stats` and the benchmarks' messages per operation. Every lock operation is one
// multicast message (requests, conversions, unlocks, cancels); grants and blocking
// callbacks follow from the agreed stream on every node, so they cost no message.
struct LockSpaceStats {
  // Indexed by the wire's operation type (wire.h: request 1 .. plock 10).
  static constexpr size_t kKinds = 11;
  std::array<uint64_t, kKinds> sent{};      // multicast by this node
  std::array<uint64_t, kKinds> received{};  // delivered from other nodes
  uint64_t completions = 0;         // answers (grant, refusal, cancel) to this node's requests
  uint64_t blocking_callbacks = 0;  // "someone waits for your lock", told to this node's client
  // Checkpoints (membership changes, snapshots) after which another member's replica of
  // the table differed from ours (each is logged): 0 unless the protocol has a bug.
  uint64_t divergences = 0;
  // "name value" lines: sent.request, ..., received.quorum, sent.total, received.total,
  // completions, blocking_callbacks, divergences.
  std::string to_string() const;
};

class LockSpace {
 public:
  virtual ~LockSpace() = default;

  // Join the group and wait until this node has the current lock table.
  virtual Status join(std::chrono::milliseconds timeout) = 0;
  // Leave; locks still held are orphaned on the other nodes (recovery needed).
  virtual void leave() = 0;

  // Asynchronous: the result arrives through LockClient::completion(cookie, *id, ...).
  virtual Status request(std::string_view name, Mode mode, uint32_t flags, uint64_t cookie,
                         LockId* id) = 0;
  // Up or down. Leaving PW/EX with `lvb` writes the resource's value block.
  virtual Status convert(LockId id, Mode mode, uint32_t flags,
                         const LvbBytes* lvb = nullptr) = 0;
  // Releases the lock (cancelling a pending request or conversion, which then completes
  // with kCancelled). Unlocking from PW/EX with `lvb` writes the value block.
  virtual Status unlock(LockId id, const LvbBytes* lvb = nullptr) = 0;
  // Cancels a waiting request or conversion; its completion says what happened.
  virtual Status cancel(LockId id) = 0;

  // Synchronous wrappers: wait up to `timeout`; on timeout the request is cancelled (and
  // undone if it was granted meanwhile) and kTimedOut returned. No completion callback.
  virtual Status lock(std::string_view name, Mode mode, uint32_t flags,
                      std::chrono::milliseconds timeout, LockId* id, Lvb* lvb = nullptr) = 0;
  virtual Status convert_wait(LockId id, Mode mode, uint32_t flags,
                              std::chrono::milliseconds timeout, Lvb* lvb = nullptr) = 0;

  // Releases the locks of one departure (and only those: the same node may have departed
  // again since). Idempotent; any member may send it.
  virtual Status recovery_done(const Departure& departure) = 0;

  // A byte-range/flock lock operation (plock_table.h), applied by every member at its
  // point of the agreed stream. `done` runs once, on the delivery thread (with no
  // lock-space lock held), when this node applies the decision: at once for most, later
  // for a request that waits. `*req` names it for plock_cancel(). If the lock space fails
  // first, `done` gets ENOLCK.
  using PlockCallback = std::function<void(const PlockResult&)>;
  virtual Status plock(PlockOp op, PlockCallback done, uint64_t* req) = 0;
  // Stops waiting request `req` (its callback gets EINTR, or its grant if that came first).
  virtual Status plock_cancel(uint64_t req) = 0;
  // Whether this node's `owner` has a lock or a waiting request on `ino` in `cls`, in the
  // local replica as of now (a close with none needs no message).
  virtual bool plock_held(uint64_t ino, PlockClass cls, uint64_t owner) const = 0;

  virtual NodeId node_id() const = 0;
  virtual bool quorate() const = 0;
  virtual std::vector<NodeId> members() const = 0;
  // Human-readable lock table (resources, granted/converting/waiting locks, LVB state).
  virtual std::string dump() const = 0;
  virtual LockSpaceStats stats() const = 0;
};

// Whether this node has the lowest id among the lock space's members: the one that speaks
// for all where one must (recovering a dead node, releasing a cleanly gone one's locks).
bool is_lowest_member(const LockSpace& ls);

std::unique_ptr<LockSpace> make_lockspace(std::unique_ptr<Transport> transport,
                                          LockClient* client);

}  // namespace lunfs::dlm

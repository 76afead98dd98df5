// A cluster node's disk lease: its right to write the shared LUN, kept as a deadline on
// the monotonic clock and checked before every write the node submits (issue 13, decision
// 7). The arithmetic is sanlock's, with the heartbeat block as the lease:
//
//   L = heartbeat_lease(interval) (two intervals), M = kHeartbeatMargin (fs/core/heartbeat.h).
//   A renewal that starts at s (before its heartbeat write is issued) and completes (the
//   write flushed) holds the lease until s + L. Another node that watches the block sees
//   that write at some o >= s, and calls this node dead only once the block has stayed
//   unchanged for L + M after o. So a node that submits nothing at or after s + L has
//   submitted its last write before the others may recover it, and M covers a write
//   still in flight at s + L (one that takes longer than M to land is the residual risk;
//   sanlock's is the same, bounded there by a watchdog reset). A renewal that completes
//   late still extends the lease, to its own start + L. Only durations on this node's
//   CLOCK_MONOTONIC are compared, never two hosts' clocks, and a wall-clock step changes
//   nothing.
//
// A renewal that starts after the lease ran out does not bring it back by itself: while
// it was out, the others may have taken this node as dead. Nodes recover only a node
// that left the lock space, and leaving it ends this node's mount for good; so the lease
// comes back (restore()) once, after such a renewal, the owner has seen a lock request
// of this node granted through the lock space's agreed stream: this node was still a
// member then, and nobody can have begun recovering it.
//
// await() is what every write, flush and queued write batch calls first: at once while
// the lease holds; while it is out the caller blocks until it is restored, at most
// `wait_limit`, and then fails with EIO.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

#include "fs/device/monotonic_clock.h"
#include "fs/result.h"

namespace lunfs {

class DiskLease {
 public:
  using Logger = std::function<void(const std::string&)>;

  // `started`: when the renewal that claimed the slot started.
  DiskLease(MonotonicClock& clock, std::chrono::nanoseconds lease, std::chrono::nanoseconds wait_limit,
            std::chrono::nanoseconds started, Logger log);
  DiskLease(const DiskLease&) = delete;
  DiskLease& operator=(const DiskLease&) = delete;

  // A renewal that started at `started` completed. False when it started after the lease
  // had run out: then only restore() brings it back.
  bool renewed(std::chrono::nanoseconds started);
  // The lease ran out, and this node was found a member of the lock space after a renewal
  // that started at `started`.
  void restore(std::chrono::nanoseconds started);
  // Before each write submission: OK while the lease holds; otherwise waits as said above.
  Status await();

  std::chrono::nanoseconds deadline() const;

 private:
  MonotonicClock& clock_;
  const std::chrono::nanoseconds lease_;
  const std::chrono::nanoseconds wait_limit_;
  Logger log_;

  mutable std::mutex mu_;
  std::condition_variable restored_;
  std::chrono::nanoseconds deadline_;
  bool out_reported_ = false;  // the lease's running out was logged, its return not yet
};

}  // namespace lunfs

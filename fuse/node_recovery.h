// Recovery of a node that left the lock space holding locks (issue 13, decision 7): a
// survivor replays the dead node's journal slot, and only then tells the lock space to drop
// the dead node's locks (recovery_done), so that nobody reads what those locks covered
// before the dead node's committed transactions are home.
//
// Which node recovers: the quorate member with the lowest node id, as every member sees the same
// membership at the same point of the lock space's message stream. Every member remembers
// each dead node until the lock space reports it recovered, so that when the recovering
// member dies too, the next lowest finishes both (a replay is idempotent, and nobody can
// have changed what the dead node's locks still cover).
//
// Fencing: the journal is replayed only after the dead node can no longer write: a fence
// agent, when the mount names one, powers it off (fence_agent.h); otherwise, or when the
// agent fails, the survivors wait for its disk lease to run out: every member keeps polling all heartbeats
// (HeartbeatObserver, fs/core/heartbeat.h), and a slot may be recovered once its block has
// been seen unchanged for two of its intervals plus a margin — judged by this host's clock
// from the first sight of those bytes, never by comparing clocks. A heartbeat that goes on
// being renewed is a node alive but cut off from the lock space: it is not recovered until
// it stops (its mount fences itself when its lock space fails or loses quorum, and stops
// its heartbeat).
//
// Why replaying under a live mount is safe: every lock release of the dead node
// checkpointed its whole journal first (go_sync), so the log holds only transactions made
// under locks it still held at death; those locks are still held for it, so no survivor has
// a cached copy of, or has changed, anything the replay writes.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dlm/lockspace.h"
#include "fs/core/heartbeat.h"
#include "fs/device/block_device.h"
#include "fs/format/superblock.h"
#include "fuse/fence_agent.h"

namespace lunfs {

class NodeRecovery {
 public:
  using Logger = std::function<void(const std::string&)>;
  struct Options {
    // The heartbeat interval assumed for a slot whose record names none.
    std::chrono::milliseconds interval{1000};
    Logger log;
    // Runs on the lowest member once a recovery has been applied (the dead node's locks
    // are gone) and no other is pending: the mount frees the files the dead node had open
    // after their last unlink (FileSystem::free_unused_orphans). On a thread of its own: it
    // takes glocks, and one may be held by a node that dies meanwhile, whose recovery
    // must not wait for it.
    std::function<void()> after_recovery;
    // Run, once per dead node whose lease has not run out yet; its success replaces the
    // wait for the lease.
    FenceAgent fence;
    // Fault injection for the cluster tests (mount.lunfs reads it from the environment,
    // LUNFS_TEST_STALL_MID_REPLAY_SECONDS): each replay stops this long after its first
    // home-block write, saying so, so that a test can kill the recovering node mid-replay.
    std::chrono::seconds stall_mid_replay{0};
  };
  NodeRecovery(BlockDevice& dev, const ondisk::Superblock& sb, dlm::LockSpace& ls, Options options);
  ~NodeRecovery() { stop(); }
  NodeRecovery(const NodeRecovery&) = delete;
  NodeRecovery& operator=(const NodeRecovery&) = delete;

  // The lock space's recover(): a node left holding `held`. Returns at once. Each
  // departure is recovered on its own: a node restarted before its last departure was
  // recovered can leave again, from another slot.
  void node_left(const dlm::Departure& departure, const std::vector<dlm::HeldLock>& held);
  // The lock space's recovered(): some member finished `departure`.
  void node_recovered(const dlm::Departure& departure);
  // Joins the thread (after a watch in progress ends). Later calls do nothing.
  void stop();
  // One line per departure not recovered yet: its node and slot, how long ago it left, and what
  // its recovery waits for (lunfs status).
  std::vector<std::string> describe();

  // The journal slot whose lock `held` contains (the ClusterLockManager's slot resource), or
  // none: a node that died before it had a slot wrote nothing.
  static std::optional<uint32_t> slot_of(const std::vector<dlm::HeldLock>& held);

 private:
  struct Dead {
    std::optional<uint32_t> slot;
    std::chrono::steady_clock::time_point left_at;
    bool replayed = false;        // recovery_done sent; waiting for the lock space's recovered()
    bool waiting_logged = false;  // the wait for its lease has been logged
    bool fenced = false;          // the fence agent powered it off
    bool agent_tried = false;     // the agent ran (and failed): the lease decides
    std::string waiting_for;      // what the last try found, in words
  };
  void run();
  void sweep_loop();
  // Replays and marks the heartbeat clean once the lease has run out. Whether the node may
  // be declared recovered; false: not yet (the reason is logged once).
  bool recover(const dlm::Departure& departure, Dead& dead);

  BlockDevice& dev_;
  const ondisk::Superblock sb_;
  dlm::LockSpace& ls_;
  Logger log_;
  std::function<void()> after_recovery_;
  const FenceAgent fence_;
  const std::chrono::seconds stall_mid_replay_;
  HeartbeatObserver observer_;  // the thread's own
  std::mutex mu_;
  std::condition_variable changed_;
  std::map<dlm::Departure, Dead> pending_;  // guarded by mu_
  bool woken_ = false;                      // a node left or was recovered: look now
  bool sweep_ = false;                      // a recovery was applied: run after_recovery_
  bool stop_sweeping_ = false;
  bool stopping_ = false;
  std::thread thread_;
  std::thread sweeper_;  // runs after_recovery_
};

}  // namespace lunfs

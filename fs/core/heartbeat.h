// Disk heartbeats (architecture decision 13): one block per node slot, rewritten by the
// daemon that holds the slot every interval, each write flushed before it counts. A
// single-host mount (lockproto=nolock) uses them as ext4's multi-mount protection: before it
// mounts it watches the blocks, refuses when one is renewed meanwhile, and waits out one that
// says "live" but no longer changes (a crashed host). The cluster mount will use the block
// of its own slot as its disk lease. Liveness is judged by observing a block change, timed
// on this host's monotonic clock, never by comparing wall clocks. Timing and the choices
// made: docs/format.md, "Heartbeat".
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "fs/device/block_device.h"
#include "fs/device/monotonic_clock.h"
#include "fs/format/slot_format.h"
#include "fs/format/superblock.h"

namespace lunfs {

inline constexpr std::chrono::milliseconds kDefaultHeartbeatInterval{5000};
inline constexpr std::chrono::milliseconds kMaxHeartbeatInterval{300'000};
// A writer renews at least once per lease (two intervals: one missed beat of slack); a
// watcher calls a block stale when it has not changed for a lease plus this margin.
inline constexpr std::chrono::milliseconds kHeartbeatMargin{1000};
inline std::chrono::milliseconds heartbeat_lease(std::chrono::milliseconds interval) { return 2 * interval; }

// What watching one slot's heartbeat showed.
struct SlotLiveness {
  enum class State {
    kClean,    // free: never mounted or cleanly unmounted (possibly while we watched)
    kStale,    // says live but did not change for its lease plus the margin
    kLive,     // says live and was renewed while we watched (renewed), or the watch ended
               // early because another slot was renewed (!renewed)
    kDamaged,  // does not decode (damage), and was not watched
  };
  uint32_t slot = 0;
  State state = State::kClean;
  bool renewed = false;
  ondisk::Heartbeat record;  // the last record read; default when the block is damaged
  std::string damage;        // why the block does not decode
  std::chrono::nanoseconds unchanged_for{0};  // how long it was watched without a change
};

struct HeartbeatWatchOptions {
  // The watcher's own interval: the lease assumed for a block that records none (written
  // before the interval was recorded, or damaged).
  std::chrono::milliseconds interval = kDefaultHeartbeatInterval;
  // Watch a damaged block's bytes like a live record (stale when unchanged, live when
  // rewritten) instead of returning kDamaged at once.
  bool watch_damaged = false;
  // Called once, before the watch, with its length: a mount that will wait says so.
  std::function<void(std::chrono::milliseconds window)> on_watch;
};

// Reads the heartbeat blocks of `slots` and, when any says live (or is damaged and
// watch_damaged), watches them for the longest lease among them plus the margin, polling
// every half interval. Returns as soon as one is renewed. One entry per slot, in order.
Result<std::vector<SlotLiveness>> watch_heartbeats(BlockDevice& dev, const ondisk::Superblock& sb,
                                                   std::span<const uint32_t> slots, MonotonicClock& clock,
                                                   const HeartbeatWatchOptions& options);

// Keeps watching every slot's heartbeat (the cluster's survivors, node_recovery.h): each
// poll() reads the heartbeat area once and remembers, per slot, the bytes and when this
// observer first saw them. A slot is stale once its bytes have been seen unchanged for its
// lease plus the margin — the same rule as watch_heartbeats, but counted from the first
// sight, so that a node found dead after the observer has long watched it is judged at
// once instead of after a fresh watch. Judged by this host's clock only: the writer's
// renewal that put those bytes there started before we saw them, so its lease ended
// before first-seen + lease. Not thread-safe: one thread polls and asks.
class HeartbeatObserver {
 public:
  // `interval`: the interval assumed for a record that names none.
  HeartbeatObserver(BlockDevice& dev, const ondisk::Superblock& sb, MonotonicClock& clock,
                    std::chrono::milliseconds interval);
  Status poll();
  // The slot as last polled: kClean (free), kStale (live or damaged, and unchanged for its
  // lease plus the margin; unchanged_for says how long; damage says why it does not
  // decode) or kLive. kLive before any poll.
  SlotLiveness liveness(uint32_t slot) const;
  // How often to poll: half the shortest interval among live records (at most 1 s).
  std::chrono::milliseconds poll_interval() const;

 private:
  struct Seen {
    std::vector<std::byte> bytes;
    std::chrono::nanoseconds first_seen{0};
    bool polled = false;
  };
  BlockDevice& dev_;
  const ondisk::Superblock& sb_;
  MonotonicClock& clock_;
  const std::chrono::milliseconds interval_;
  std::vector<Seen> seen_;
};

// Rewrites a slot's heartbeat as clean (free, counter + 1), flushed, provided the block still
// holds what `seen` describes (its record, or damage): for fsck, once it has watched the slot
// go stale and the admin has said that no node has the file system mounted.
Status mark_heartbeat_clean(BlockDevice& dev, const ondisk::Superblock& sb, const SlotLiveness& seen);

// "host h1 (node 0, pid 1234, mount id 0x...)", for messages.
std::string describe_heartbeat_holder(const ondisk::Heartbeat& record);

struct HeartbeatIdentity {
  uint32_t node = 0;      // Corosync node id; 0 for a nolock mount
  uint64_t mount_id = 0;  // random per mount
  std::string host;
};
// This host's name and a fresh random mount id.
HeartbeatIdentity local_heartbeat_identity(uint32_t node);

// The heartbeat of the slot this mount holds, and its renewal thread.
class SlotHeartbeat {
 public:
  using Logger = std::function<void(const std::string&)>;

  // Writes the first live record of `slot` (continuing the block's counter) and flushes
  // it. Call it after watch_heartbeats found the slot clean or stale.
  static Result<std::unique_ptr<SlotHeartbeat>> claim(BlockDevice& dev, const ondisk::Superblock& sb, uint32_t slot,
                                                      HeartbeatIdentity identity, std::chrono::milliseconds interval,
                                                      MonotonicClock& clock, Logger log);
  SlotHeartbeat(const SlotHeartbeat&) = delete;
  SlotHeartbeat& operator=(const SlotHeartbeat&) = delete;
  ~SlotHeartbeat();

  // One renewal: checks that the block still holds this mount's last record (EBUSY naming
  // the writer when another mount took it over; nothing is written then), writes the next
  // record and flushes. Only a renewal whose flush succeeded counts.
  Status renew();
  // One beat of the renewal thread: renew(), log a failure, and log loudly once the last
  // successful renewal is older than the lease (watchers on other hosts may then take the
  // slot as abandoned).
  void tick();
  // Told the start time of each renewal that succeeded (a cluster mount's disk lease,
  // fs/device/disk_lease.h, counts from it), on the renewal thread. Set it before start().
  using RenewalHook = std::function<void(std::chrono::nanoseconds started)>;
  void set_renewal_hook(RenewalHook hook) { renewal_hook_ = std::move(hook); }
  // The thread: tick() every interval until stop(). Start it in the process that keeps
  // running (after fuse_daemonize forks).
  void start();
  void stop();
  // Stops the thread and marks the slot clean (free), flushed: the next mount need not wait.
  Status release();

  uint64_t counter() const;
  unsigned consecutive_failures() const;
  std::chrono::milliseconds interval() const { return interval_; }

 private:
  SlotHeartbeat(BlockDevice& dev, const ondisk::Superblock& sb, uint32_t slot, std::chrono::milliseconds interval,
                MonotonicClock& clock, Logger log);
  Status write_record(ondisk::HeartbeatState state);  // with mu_ held
  uint64_t block_offset() const;

  BlockDevice& dev_;
  const ondisk::Superblock sb_;
  const uint32_t slot_;
  const std::chrono::milliseconds interval_;
  MonotonicClock& clock_;
  Logger log_;
  RenewalHook renewal_hook_;

  mutable std::mutex mu_;
  ondisk::Heartbeat last_;  // the record this mount wrote last
  std::chrono::nanoseconds last_renewal_{0};
  unsigned failures_ = 0;
  bool lost_reported_ = false;

  std::mutex thread_mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace lunfs

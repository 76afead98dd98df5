// NodeRecovery; see node_recovery.h.
#include "fuse/node_recovery.h"

#include <cstdio>
#include <ctime>
#include <utility>
#include <vector>

#include "fs/device/forwarding_device.h"
#include "fuse/cluster_lock_manager.h"
#include "journal/replay.h"

namespace lunfs {

namespace {

std::string seconds_since(std::chrono::steady_clock::time_point t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count());
  return buf;
}

// Options::stall_mid_replay: the replay's device, stopping after its first write.
class StallAfterFirstWrite final : public ForwardingDevice {
 public:
  StallAfterFirstWrite(BlockDevice& inner, std::chrono::seconds stall, std::function<void()> say)
      : ForwardingDevice(inner), stall_(stall), say_(std::move(say)) {}
  Status write(uint64_t offset, std::span<const std::byte> buf) override {
    LUNFS_TRY(inner_.write(offset, buf));
    if (!stalled_) {
      stalled_ = true;
      say_();
      std::this_thread::sleep_for(stall_);
    }
    return {};
  }

 private:
  const std::chrono::seconds stall_;
  std::function<void()> say_;
  bool stalled_ = false;
};

}  // namespace

NodeRecovery::NodeRecovery(BlockDevice& dev, const ondisk::Superblock& sb, dlm::LockSpace& ls, Options options)
    : dev_(dev),
      sb_(sb),
      ls_(ls),
      log_(std::move(options.log)),
      after_recovery_(std::move(options.after_recovery)),
      fence_(options.fence),
      stall_mid_replay_(options.stall_mid_replay),
      observer_(dev, sb_, steady_monotonic_clock(), options.interval) {
  thread_ = std::thread([this] { run(); });
  if (after_recovery_) sweeper_ = std::thread([this] { sweep_loop(); });
}

std::optional<uint32_t> NodeRecovery::slot_of(const std::vector<dlm::HeldLock>& held) {
  for (const dlm::HeldLock& h : held) {
    if (h.name.size() != 9 || static_cast<uint8_t>(h.name[0]) != ClusterLockManager::kSlotResource) continue;
    uint64_t n = 0;
    for (int i = 1; i < 9; ++i) n = n << 8 | static_cast<uint8_t>(h.name[i]);
    return static_cast<uint32_t>(n);
  }
  return std::nullopt;
}

void NodeRecovery::node_left(const dlm::Departure& departure, const std::vector<dlm::HeldLock>& held) {
  const dlm::NodeId node = departure.node;
  const std::optional<uint32_t> slot = slot_of(held);
  std::string names;
  for (const dlm::HeldLock& h : held) {
    std::string hex;
    for (unsigned char c : h.name) {
      char b[4];
      std::snprintf(b, sizeof b, "%02x", c);
      hex += b;
    }
    names += " " + hex + ":" + std::string(dlm::mode_name(h.mode));
  }
  log_("node " + std::to_string(node) + (slot ? " (slot " + std::to_string(*slot) + ")" : std::string()) +
       " left the lock space holding " + std::to_string(held.size()) + " locks: they stay held until it is recovered" +
       (slot ? std::string() : " [" + names + " ]"));
  std::lock_guard lock(mu_);
  if (stopping_) return;
  Dead& dead = pending_[departure] = Dead{};
  dead.slot = slot;
  dead.left_at = std::chrono::steady_clock::now();
  woken_ = true;
  changed_.notify_all();
}

void NodeRecovery::node_recovered(const dlm::Departure& departure) {
  std::lock_guard lock(mu_);
  pending_.erase(departure);
  sweep_ = true;
  woken_ = true;
  changed_.notify_all();
}

void NodeRecovery::stop() {
  // The sweep first: one in progress may wait for a lock that only a recovery still to be
  // made releases.
  {
    std::lock_guard lock(mu_);
    stop_sweeping_ = true;
    changed_.notify_all();
  }
  if (sweeper_.joinable()) sweeper_.join();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    changed_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> NodeRecovery::describe() {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [departure, dead] : pending_) {
    std::string line = "node " + std::to_string(departure.node) +
                       (dead.slot ? " (slot " + std::to_string(*dead.slot) + ")" : std::string(" (no slot)")) +
                       " left " + seconds_since(dead.left_at) + " ago: ";
    if (dead.replayed) {
      line += "journal replayed, its locks being released";
    } else if (!dead.waiting_for.empty()) {
      line += dead.waiting_for;
    } else {
      line += "recovered by the lowest member";
    }
    out.push_back(line);
  }
  return out;
}

void NodeRecovery::run() {
  bool poll_failed = false;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    // Always polled, so that a node found dead later is judged by how long its heartbeat
    // has already been unchanged (HeartbeatObserver).
    if (Status st = observer_.poll(); !st) {
      if (!poll_failed) log_("cannot read the other nodes' heartbeats: " + st.to_string());
      poll_failed = true;
    } else {
      poll_failed = false;
    }
    // Only the quorate side recovers: a node cut off is the lowest member of a lock space of
    // its own, and the nodes it sees leave are alive (their leases would never run out).
    const bool lowest = dlm::is_lowest_member(ls_) && ls_.quorate();
    lock.lock();
    if (lowest) {
      // Every dead node in this round, each on its own: one still in its lease does not
      // hold back another whose lease has run out.
      std::vector<std::pair<dlm::Departure, Dead>> round;
      for (const auto& [departure, dead] : pending_) {
        if (!dead.replayed) round.emplace_back(departure, dead);
      }
      lock.unlock();
      for (auto& [departure, dead] : round) {
        if (!recover(departure, dead)) continue;
        const std::string who = "node " + std::to_string(departure.node);
        const std::string slot = dead.slot ? " (slot " + std::to_string(*dead.slot) + ")" : std::string();
        if (dlm::Status st = ls_.recovery_done(departure); st != dlm::Status::kOk) {
          log_("recovery of " + who + slot + ": the lock space refused recovery_done: " +
               std::string(dlm::status_name(st)));
          continue;
        }
        dead.replayed = true;
        log_(who + " recovered " + seconds_since(dead.left_at) + " after it left" + slot + "; its locks are released");
      }
      lock.lock();
      // The map may have changed meanwhile (recovered by another member).
      for (const auto& [departure, dead] : round) {
        if (auto it = pending_.find(departure); it != pending_.end()) it->second = dead;
      }
    }
    changed_.wait_for(lock, observer_.poll_interval(), [&] { return stopping_ || woken_; });
    woken_ = false;
  }
}

// On its own thread: the sweep takes the glocks of the files it frees, and a node that died
// holding one of them is recovered by run(), which must not be the thread waiting for it.
// It waits until no departure is pending, so it does not start by waiting for one.
void NodeRecovery::sweep_loop() {
  std::unique_lock lock(mu_);
  while (!stop_sweeping_) {
    if (!sweep_) {
      changed_.wait(lock, [&] { return stop_sweeping_ || sweep_; });
      continue;
    }
    lock.unlock();
    const bool lowest = dlm::is_lowest_member(ls_) && ls_.quorate();
    lock.lock();
    if (!lowest || !pending_.empty()) {
      changed_.wait_for(lock, std::chrono::milliseconds(500), [&] { return stop_sweeping_; });
      continue;
    }
    sweep_ = false;
    lock.unlock();
    after_recovery_();
    lock.lock();
  }
}

bool NodeRecovery::recover(const dlm::Departure& departure, Dead& dead) {
  const dlm::NodeId node = departure.node;
  const std::string who = "node " + std::to_string(node);
  if (!dead.slot) {
    // A node holds glocks only after it has claimed its slot, so its slot lock should be
    // among them; when this node's copy of the lock table lacks it (a replica that missed
    // it), the heartbeats still name the node's slot: a mount writes its heartbeat before
    // its journal. No heartbeat of the node's, live or stale: it never wrote.
    for (uint32_t s = 0; s < sb_.geometry.journal_count; ++s) {
      const SlotLiveness l = observer_.liveness(s);
      if (l.state != SlotLiveness::State::kClean && l.damage.empty() && l.record.node == node) dead.slot = s;
    }
    if (!dead.slot) {
      log_(who + " left holding locks but no journal slot, and no heartbeat names it: it wrote nothing; "
                 "releasing its locks");
      return true;
    }
    log_(who + " left holding locks but no slot lock in this node's lock table; its heartbeat is in slot " +
         std::to_string(*dead.slot) + ", which is recovered");
  }
  const uint32_t slot = *dead.slot;
  const std::string where = who + " (slot " + std::to_string(slot) + ")";
  const SlotLiveness seen = observer_.liveness(slot);
  if (seen.state == SlotLiveness::State::kLive && !dead.fenced && !dead.agent_tried && !fence_.path.empty()) {
    dead.agent_tried = true;
    const auto started = std::chrono::steady_clock::now();
    if (Status st = fence_node(fence_, node); st) {
      dead.fenced = true;
      log_(where + " fenced by " + fence_.path + " in " + seconds_since(started) + "; its lease is not waited for");
    } else {
      log_("fencing " + where + " failed: " + st.message() + "; waiting for its disk lease to run out instead");
    }
  }
  if (seen.state == SlotLiveness::State::kLive && !dead.fenced) {
    dead.waiting_for = "this node waits for its disk lease to run out (heartbeat unchanged for " +
                       std::to_string(seen.unchanged_for.count() / 1'000'000) + " ms)";
    if (!dead.waiting_logged) {
      dead.waiting_logged = true;
      log_("recovery of " + where + " waits for its disk lease to run out: its heartbeat was last renewed " +
           std::to_string(seen.unchanged_for.count() / 1'000'000) + " ms ago (" +
           (seen.damage.empty() ? describe_heartbeat_holder(seen.record) : "damaged heartbeat block") + ")");
    }
    return false;
  }
  // The wall-clock time, to the nanosecond, lets a test compare it with the dead node's
  // write log (fs/device/write_log_device.h): none of its writes may complete after it.
  timespec wall{};
  clock_gettime(CLOCK_REALTIME, &wall);
  char since[40];
  std::snprintf(since, sizeof since, "%lld.%09ld", static_cast<long long>(wall.tv_sec), wall.tv_nsec);
  log_("recovery of " + where + ": replaying its journal (from realtime " + since + ")");
  const auto replay_start = std::chrono::steady_clock::now();
  std::optional<StallAfterFirstWrite> stalling;
  if (stall_mid_replay_.count() > 0) {
    stalling.emplace(dev_, stall_mid_replay_, [&] {
      log_("recovery of " + where + ": stalls mid-replay for " + std::to_string(stall_mid_replay_.count()) +
           " s after its first write (LUNFS_TEST_STALL_MID_REPLAY_SECONDS)");
    });
  }
  auto report = journal::replay(stalling ? static_cast<BlockDevice&>(*stalling) : dev_, sb_, slot);
  dead.waiting_for = "this node replays its journal";
  if (!report) {
    dead.waiting_for = "its journal replay failed: " + report.status().to_string() + "; run fsck.lunfs";
    log_("recovery of " + where + ": journal replay failed: " + report.status().to_string() +
         "; its locks stay held (run fsck.lunfs once every node is unmounted)");
    return false;
  }
  if (report->end == journal::LogEnd::kDamaged) {
    dead.waiting_for = "its journal is damaged; unmount every node and run fsck.lunfs";
    log_("recovery of " + where + ": its journal is damaged (" + report->end_reason +
         "); what could be replayed was, and its locks stay held: unmount every node and run fsck.lunfs");
    return false;
  }
  log_("recovery of " + where + " " + seconds_since(dead.left_at) + " after it left (replay " +
       seconds_since(replay_start) + "): " + report->to_string());
  if (seen.state == SlotLiveness::State::kStale) {
    if (Status st = mark_heartbeat_clean(dev_, sb_, seen); !st) {
      // Not fatal: the next mount of the slot watches the stale heartbeat and takes it over.
      log_("recovery of " + where + ": cannot mark its heartbeat clean: " + st.to_string());
    }
  }
  return true;
}

}  // namespace lunfs

// NodeRecovery; see node_recovery.h.
#include "fuse/node_recovery.h"

#include <algorithm>

#include "fs/core/heartbeat.h"
#include "fuse/cluster_lock_manager.h"
#include "journal/replay.h"

namespace lunfs {

namespace {

// How soon a recovery that could not finish (a heartbeat still renewed, an I/O error) is
// tried again.
constexpr std::chrono::seconds kRetryAfter{2};

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

NodeRecovery::NodeRecovery(BlockDevice& dev, const ondisk::Superblock& sb, dlm::LockSpace& ls,
                           std::chrono::milliseconds interval, Logger log)
    : dev_(dev), sb_(sb), ls_(ls), interval_(interval), log_(std::move(log)) {
  thread_ = std::thread([this] { run(); });
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

void NodeRecovery::node_left(dlm::NodeId node, const std::vector<dlm::HeldLock>& held) {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  pending_[node] = Dead{slot_of(held), std::chrono::steady_clock::now()};
  changed_.notify_all();
}

void NodeRecovery::node_recovered(dlm::NodeId node) {
  std::lock_guard lock(mu_);
  pending_.erase(node);
  changed_.notify_all();
}

void NodeRecovery::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    changed_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

bool NodeRecovery::lowest_member() const {
  const std::vector<dlm::NodeId> members = ls_.members();
  return !members.empty() && *std::min_element(members.begin(), members.end()) == ls_.node_id();
}

void NodeRecovery::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    // Woken by a death, a recovery, or the retry timer (membership changes that make this
    // node the lowest come with a death, which wakes it).
    changed_.wait_for(lock, kRetryAfter, [&] { return stopping_ || !pending_.empty(); });
    if (stopping_) return;
    if (pending_.empty() || !lowest_member()) {
      if (!pending_.empty()) changed_.wait_for(lock, kRetryAfter, [&] { return stopping_; });
      continue;
    }
    const auto [node, dead] = *pending_.begin();
    lock.unlock();
    const bool done = recover(node, dead);
    if (done) {
      if (dlm::Status st = ls_.recovery_done(node); st != dlm::Status::kOk) {
        log_("recovery of node " + std::to_string(node) + ": the lock space refused recovery_done: " +
             std::string(dlm::status_name(st)));
      } else {
        log_("node " + std::to_string(node) + " recovered " + std::to_string(seconds_since(dead.left_at)).substr(0, 5) +
             " s after it left; its locks are released");
      }
    }
    lock.lock();
    // Recovered: the lock space's recovered() removes it (on every member alike). Not: wait
    // before the next try, unless something else happens first.
    if (!done) changed_.wait_for(lock, kRetryAfter, [&] { return stopping_; });
    else changed_.wait_for(lock, kRetryAfter, [&] { return stopping_ || !pending_.count(node); });
  }
}

bool NodeRecovery::recover(dlm::NodeId node, const Dead& dead) {
  const std::string who = "node " + std::to_string(node);
  if (!dead.slot) {
    log_(who + " left holding locks but no journal slot: it wrote nothing; releasing its locks");
    return true;
  }
  const uint32_t slot = *dead.slot;
  const std::string where = who + " (slot " + std::to_string(slot) + ")";
  HeartbeatWatchOptions watch;
  watch.interval = interval_;
  watch.watch_damaged = true;
  watch.on_watch = [&](std::chrono::milliseconds window) {
    log_(where + " left the cluster holding locks; waiting up to " + std::to_string(window.count()) +
         " ms for its disk lease to run out before replaying its journal");
  };
  const uint32_t slots[] = {slot};
  auto liveness = watch_heartbeats(dev_, sb_, slots, steady_monotonic_clock(), watch);
  if (!liveness) {
    log_("recovery of " + where + ": cannot read its heartbeat: " + liveness.status().to_string());
    return false;
  }
  const SlotLiveness& seen = liveness->front();
  if (seen.state == SlotLiveness::State::kLive) {
    log_("recovery of " + where + " waits: its heartbeat is still renewed (" +
         describe_heartbeat_holder(seen.record) + "), so it may still write; it is recovered once it stops");
    return false;
  }
  auto report = journal::replay(dev_, sb_, slot);
  if (!report) {
    log_("recovery of " + where + ": journal replay failed: " + report.status().to_string() +
         "; its locks stay held (run fsck.lunfs once every node is unmounted)");
    return false;
  }
  if (report->end == journal::LogEnd::kDamaged) {
    log_("recovery of " + where + ": its journal is damaged (" + report->end_reason +
         "); what could be replayed was, and its locks stay held: unmount every node and run fsck.lunfs");
    return false;
  }
  log_("recovery of " + where + ": " + report->to_string());
  if (seen.state != SlotLiveness::State::kClean) {
    if (Status st = mark_heartbeat_clean(dev_, sb_, seen); !st) {
      // Not fatal: the next mount of the slot watches the stale heartbeat and takes it over.
      log_("recovery of " + where + ": cannot mark its heartbeat clean: " + st.to_string());
    }
  }
  return true;
}

}  // namespace lunfs

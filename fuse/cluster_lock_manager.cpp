// ClusterLockManager; see cluster_lock_manager.h.
#include "fuse/cluster_lock_manager.h"

#include <corosync/cmap.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace lunfs {

namespace {

std::string resource(uint8_t type, uint64_t number) {
  std::string r(9, '\0');
  r[0] = static_cast<char>(type);
  for (int i = 0; i < 8; ++i) r[1 + i] = static_cast<char>(number >> (56 - 8 * i));
  return r;
}

// A slot claim never waits (NOQUEUE); this bounds only the agreed delivery of the answer.
constexpr std::chrono::seconds kSlotClaimTimeout{30};

}  // namespace

ClusterLockManager::~ClusterLockManager() { stop(); }

std::string ClusterLockManager::resource_name(const GlockName& name) {
  return resource(static_cast<uint8_t>(name.type), name.number);
}

dlm::Mode ClusterLockManager::dlm_mode(GlockMode mode) {
  switch (mode) {
    case GlockMode::kShared: return dlm::Mode::PR;
    case GlockMode::kDeferred: return dlm::Mode::CW;
    case GlockMode::kExclusive: return dlm::Mode::EX;
    case GlockMode::kUnlocked: break;
  }
  return dlm::Mode::NL;
}

GlockMode ClusterLockManager::glock_mode(dlm::Mode mode) {
  switch (mode) {
    case dlm::Mode::PR: return GlockMode::kShared;
    case dlm::Mode::CW: return GlockMode::kDeferred;
    case dlm::Mode::NL: return GlockMode::kUnlocked;
    default: return GlockMode::kExclusive;  // CR, PW and EX never come from us; PW/EX block everything
  }
}

Status ClusterLockManager::dlm_error(dlm::Status st, const std::string& what) const {
  const std::string why = what + ": " + std::string(dlm::status_name(st));
  switch (st) {
    case dlm::Status::kAgain:
      return error(EAGAIN, why + " (held by another node)");
    case dlm::Status::kDeadlock:
      // The glock layer gives the cached mode back and asks anew (GlockTable::lock).
      return error(EDEADLK, why + " (conversion deadlock with another node)");
    case dlm::Status::kShutdown:
    case dlm::Status::kStale:
      return error(ENOTCONN, why + " (the lock space is gone: corosync stopped or this node was cut off)");
    case dlm::Status::kNoQuorum:
      return error(ENOTCONN, why + " (the cluster has no quorum)");
    default:
      return error(EIO, why);
  }
}

void ClusterLockManager::set_release_hook(ReleaseHook hook) {
  std::lock_guard lock(mu_);
  release_hook_ = std::move(hook);
}

void ClusterLockManager::set_recovery_hooks(NodeLeftHook left, NodeRecoveredHook recovered) {
  std::lock_guard lock(hooks_mu_);
  node_left_ = std::move(left);
  node_recovered_ = std::move(recovered);
  if (!node_left_) return;
  for (const auto& [departure, held] : left_before_hooks_) node_left_(departure, held);
  left_before_hooks_.clear();
}

void ClusterLockManager::set_failure_hook(std::function<void(const std::string&)> hook) {
  std::lock_guard lock(hooks_mu_);
  failure_hook_ = std::move(hook);
}

void ClusterLockManager::set_demote_callback(DemoteCallback cb) {
  std::lock_guard lock(mu_);
  demote_ = std::move(cb);
}

Status ClusterLockManager::acquire(const GlockName& name, GlockMode mode) {
  return request_or_convert(name, mode, 0);
}

Status ClusterLockManager::acquire_if_free(const GlockName& name, GlockMode mode) {
  // Refused, it tells the holders in the way (NOQUEUEBAST): an iopen holder that only
  // caches a name lets go of it, and then frees the inode itself (glops.cpp, iopen).
  return request_or_convert(name, mode, dlm::kNoQueue | dlm::kNoQueueBast);
}

Status ClusterLockManager::request_or_convert(const GlockName& name, GlockMode mode, uint32_t flags) {
  const dlm::Mode want = dlm_mode(mode);
  // mu_ is held across the call into the lock space so that the lock's id is known here
  // before its completion or a blocking callback (delivered on another thread, which
  // takes mu_) can look it up. The lock space runs callbacks without its own locks held.
  std::unique_lock lock(mu_);
  if (failure_ != dlm::Status::kOk) return dlm_error(failure_, "lock " + name.to_string());
  auto it = held_.find(name);
  const bool converting = it != held_.end();
  dlm::LockId id = 0;
  dlm::Status st;
  if (converting) {
    id = it->second.id;
    st = ls_->convert(id, want, flags);
  } else {
    st = ls_->request(resource_name(name), want, flags, 0, &id);
    if (st == dlm::Status::kOk) {
      held_[name] = Held{id, dlm::Mode::NL};
      names_.emplace(id, name);
    }
  }
  if (st != dlm::Status::kOk) return dlm_error(st, "lock " + name.to_string());
  // No timeout: a glock request waits as long as the holder takes to sync and give it up.
  // A lock space that fails completes every pending request (with kShutdown or kStale).
  Waiter w;
  waiters_[id] = &w;
  changed_.wait(lock, [&] { return w.done; });
  waiters_.erase(id);
  if (w.status == dlm::Status::kOk) {
    held_[name].granted = w.mode;
    return Status::ok();
  }
  if (!converting) {
    held_.erase(name);
    names_.erase(id);
  }
  return dlm_error(w.status, std::string(converting ? "convert " : "lock ") + name.to_string() + " to " +
                                 std::string(dlm::mode_name(want)));
}

Status ClusterLockManager::release(const GlockName& name) {
  ReleaseHook hook;
  {
    std::lock_guard lock(mu_);
    if (name.type == GlockType::kInode) hook = release_hook_;
  }
  if (hook) hook(name);
  std::lock_guard lock(mu_);
  auto it = held_.find(name);
  if (it == held_.end()) return error(EINVAL, "release of " + name.to_string() + ", which this node does not hold");
  const dlm::LockId id = it->second.id;
  held_.erase(it);
  names_.erase(id);
  // Not waited for: a later request of this node for the same resource is ordered after
  // the unlock (one sender's messages keep their order in the agreed stream).
  if (dlm::Status st = ls_->unlock(id); st != dlm::Status::kOk) return dlm_error(st, "unlock " + name.to_string());
  return Status::ok();
}

void ClusterLockManager::completion(uint64_t, dlm::LockId id, dlm::Status status, dlm::Mode mode, const dlm::Lvb&) {
  std::lock_guard lock(mu_);
  auto it = waiters_.find(id);
  if (it == waiters_.end()) return;  // the completion of an unlocked lock's last conversion
  it->second->done = true;
  it->second->status = status;
  it->second->mode = mode;
  changed_.notify_all();
}

void ClusterLockManager::blocking(uint64_t, dlm::LockId id, dlm::Mode requested) {
  std::lock_guard lock(mu_);
  auto it = names_.find(id);
  if (it == names_.end() || stopping_) return;  // released meanwhile
  demotes_.push_back({it->second, id, requested});
  if (demotes_.size() > idle_workers_ && workers_.size() < kMaxWorkers) {
    workers_.emplace_back([this] { worker(); });
  }
  changed_.notify_all();
}

void ClusterLockManager::worker() {
  std::unique_lock lock(mu_);
  for (;;) {
    ++idle_workers_;
    changed_.wait(lock, [&] { return stopping_ || !demotes_.empty(); });
    --idle_workers_;
    if (stopping_) return;
    DemoteRequest r = demotes_.front();
    demotes_.pop_front();
    // The blocking callback was meant for that lock: a lock given back and taken anew
    // since then has had its own callback if it is in the way.
    auto it = held_.find(r.name);
    if (it == held_.end() || it->second.id != r.id || !demote_) continue;
    DemoteCallback cb = demote_;
    lock.unlock();
    cb(r.name, glock_mode(r.requested));
    lock.lock();
  }
}

void ClusterLockManager::recover(const dlm::Departure& departure, const std::vector<dlm::HeldLock>& held) {
  // A node that unmounted cleanly leaves holding only its slot lock in NL (release_slot):
  // nothing to recover, and an orphan that blocks nobody. The lowest member says so for
  // everyone (recovery_done is idempotent and any member may send it).
  const bool clean = std::all_of(held.begin(), held.end(), [](const dlm::HeldLock& h) { return h.mode == dlm::Mode::NL; });
  if (clean) {
    if (dlm::is_lowest_member(*ls_)) {
      if (dlm::Status st = ls_->recovery_done(departure); st != dlm::Status::kOk) {
        std::fprintf(stderr, "mount.lunfs: cannot release the slot lock node %u left behind: %s\n", departure.node,
                     std::string(dlm::status_name(st)).c_str());
      }
    }
    return;
  }
  std::lock_guard hooks(hooks_mu_);
  if (node_left_) {
    node_left_(departure, held);
    return;
  }
  left_before_hooks_[departure] = held;
}

void ClusterLockManager::recovered(const dlm::Departure& departure) {
  std::lock_guard hooks(hooks_mu_);
  left_before_hooks_.erase(departure);
  if (node_recovered_) node_recovered_(departure);
}

void ClusterLockManager::quorum(bool quorate) {
  if (quorate) return;
  std::fprintf(stderr, "mount.lunfs: the cluster lost quorum on this node\n");
  std::lock_guard hooks(hooks_mu_);
  if (failure_hook_) failure_hook_("this node lost quorum");
}

void ClusterLockManager::failed(dlm::Status why) {
  {
    std::lock_guard lock(mu_);
    failure_ = why;
    changed_.notify_all();
  }
  const std::string what = "the lock space failed (" + std::string(dlm::status_name(why)) + ")";
  std::fprintf(stderr, "mount.lunfs: %s: file system operations fail from now on\n", what.c_str());
  std::lock_guard hooks(hooks_mu_);
  if (failure_hook_) failure_hook_(what);
}

Result<uint32_t> ClusterLockManager::claim_slot(std::optional<uint32_t> wanted, uint32_t count) {
  auto try_slot = [&](uint32_t s) {
    dlm::LockId id = 0;
    dlm::Status st = ls_->lock(resource(kSlotResource, s), dlm::Mode::EX, dlm::kNoQueue, kSlotClaimTimeout, &id);
    if (st == dlm::Status::kOk) {
      std::lock_guard lock(mu_);
      slot_lock_ = id;
    }
    return st;
  };
  if (wanted) {
    dlm::Status st = try_slot(*wanted);
    if (st == dlm::Status::kOk) return *wanted;
    if (st == dlm::Status::kAgain) {
      return error(EBUSY, "slot " + std::to_string(*wanted) + " is in use by another mount of the cluster");
    }
    return dlm_error(st, "journal slot " + std::to_string(*wanted));
  }
  for (uint32_t s = 0; s < count; ++s) {
    dlm::Status st = try_slot(s);
    if (st == dlm::Status::kOk) return s;
    if (st != dlm::Status::kAgain) return dlm_error(st, "journal slot " + std::to_string(s));
  }
  return error(EBUSY, "all " + std::to_string(count) +
                          " journal slots are in use by live mounts (mkfs.lunfs -j sets how many nodes may mount)");
}

Status ClusterLockManager::release_slot() {
  std::optional<dlm::LockId> id;
  {
    std::lock_guard lock(mu_);
    id.swap(slot_lock_);
  }
  if (!id) return Status::ok();
  // A conversion waited for, not an unlock: its completion is ordered after every unlock
  // this node sent before it, so when it returns no glock of this node is left in the
  // table, and the node may leave. The NL lock left behind blocks nobody (recover()).
  if (dlm::Status st = ls_->convert_wait(*id, dlm::Mode::NL, 0, kSlotClaimTimeout); st != dlm::Status::kOk) {
    return dlm_error(st, "release the journal slot");
  }
  return Status::ok();
}

void ClusterLockManager::stop() {
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    demotes_.clear();
    workers.swap(workers_);
    changed_.notify_all();
  }
  for (auto& t : workers) t.join();
}

Result<std::string> corosync_cluster_name() {
  cmap_handle_t h;
  if (cmap_initialize(&h) != CS_OK) return error(ENOTCONN, "cannot connect to corosync (is it running on this node?)");
  char* value = nullptr;
  const cs_error_t e = cmap_get_string(h, "totem.cluster_name", &value);
  cmap_finalize(h);
  if (e != CS_OK || !value) return error(ENOENT, "corosync has no totem.cluster_name");
  std::string name(value);
  std::free(value);
  return name;
}

}  // namespace lunfs

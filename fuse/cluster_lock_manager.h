// lockproto=corosync: the core's LockManager (fs/core/glock.h) on a dlm::LockSpace, so that a
// mount's glocks are locks of the file system's lock space, shared with every other node
// that mounts the LUN. One DLM resource per GlockName; modes as GFS2 maps them (SH->PR,
// DF->CW, EX->EX). A blocking callback (another node waits for a conflicting mode) becomes
// the glock table's demote (sync, invalidate, release), run on a worker thread of its own:
// a demote waits for local holders, which may themselves wait for DLM grants delivered on
// the lock space's thread. The journal slot of the mount is a DLM lock of its own, held EX
// for the life of the mount. Decisions and limits: docs/cluster.md.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "dlm/lockspace.h"
#include "fs/core/glock.h"
#include "fs/result.h"

namespace lunfs {

class ClusterLockManager final : public LockManager, public dlm::LockClient {
 public:
  // Runs before an inode glock is released (after the core's go_sync and go_inval), on
  // the thread that releases it: the frontend invalidates the kernel's caches there.
  using ReleaseHook = std::function<void(const GlockName&)>;

  ClusterLockManager() = default;
  ~ClusterLockManager() override;
  ClusterLockManager(const ClusterLockManager&) = delete;
  ClusterLockManager& operator=(const ClusterLockManager&) = delete;

  // The lock space this manager's locks live in; before it is joined (it delivers to us).
  void attach(dlm::LockSpace* ls) { ls_ = ls; }
  void set_release_hook(ReleaseHook hook);
  // Journal recovery (fuse/node_recovery.h): told when a node leaves holding locks that
  // need it, and when some member has recovered one. Called on the delivery thread: they
  // must return at once. Nodes that left before the hooks were set (a joiner learns of
  // the recoveries still pending when it joins, before its mount is up) are told to
  // `left` when it is set; until then their locks stay held.
  using NodeLeftHook = std::function<void(const dlm::Departure&, const std::vector<dlm::HeldLock>&)>;
  using NodeRecoveredHook = std::function<void(const dlm::Departure&)>;
  void set_recovery_hooks(NodeLeftHook left, NodeRecoveredHook recovered);
  // Told when the lock space fails for good (after every waiting request has failed) or
  // loses quorum: the mount must stop writing before the others recover its journal.
  void set_failure_hook(std::function<void(const std::string& why)> hook);

  // Takes the journal slot `wanted`, or the lowest free one of `count`, as an EX lock kept
  // until release_slot(): a slot that a live mount holds is never given to another. EBUSY
  // names the slot (or says all are taken).
  Result<uint32_t> claim_slot(std::optional<uint32_t> wanted, uint32_t count);
  // After every glock is released (unmount): converts the slot lock to NL and waits for
  // it, which orders it after this node's unlocks, so that leaving the lock space then
  // leaves no lock behind that blocks another node.
  Status release_slot();

  // Stops the demote workers; call before the glock table goes away.
  void stop();

  // LockManager.
  void set_demote_callback(DemoteCallback cb) override;
  Status acquire(const GlockName& name, GlockMode mode) override;
  // A NOQUEUE request or conversion (iopen EX, decision 11): waits for its delivery only.
  Status acquire_if_free(const GlockName& name, GlockMode mode) override;
  Status release(const GlockName& name) override;
  std::string protocol() const override { return "corosync"; }

  // LockClient (called on the lock space's delivery thread).
  void completion(uint64_t cookie, dlm::LockId id, dlm::Status status, dlm::Mode mode,
                  const dlm::Lvb& lvb) override;
  void blocking(uint64_t cookie, dlm::LockId id, dlm::Mode requested) override;
  void recover(const dlm::Departure& departure, const std::vector<dlm::HeldLock>& held) override;
  void recovered(const dlm::Departure& departure) override;
  // Losing quorum is failing, for writing: the quorate side may recover this node once its
  // heartbeat stops, so it fences itself at once (and stays fenced when quorum returns).
  void quorum(bool quorate) override;
  void failed(dlm::Status why) override;

  // The DLM resource of a glock: its type byte and its number, big-endian (9 bytes, kept
  // in std::string's inline buffer). Journal slots use type kSlotResource.
  static std::string resource_name(const GlockName& name);
  static constexpr uint8_t kSlotResource = 0x80;
  static dlm::Mode dlm_mode(GlockMode mode);
  static GlockMode glock_mode(dlm::Mode mode);

 private:
  Status request_or_convert(const GlockName& name, GlockMode mode, uint32_t flags);
  struct Held {
    dlm::LockId id = 0;
    dlm::Mode granted = dlm::Mode::NL;
  };
  struct Waiter {
    bool done = false;
    dlm::Status status = dlm::Status::kOk;
    dlm::Mode mode = dlm::Mode::NL;
  };
  struct DemoteRequest {
    GlockName name;
    dlm::LockId id;
    dlm::Mode requested;
  };
  void worker();
  Status dlm_error(dlm::Status st, const std::string& what) const;

  dlm::LockSpace* ls_ = nullptr;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  DemoteCallback demote_;
  ReleaseHook release_hook_;
  // The hooks are called with hooks_mu_ held, so that clearing them waits for a call in
  // progress (the objects they use go right after).
  std::mutex hooks_mu_;
  NodeLeftHook node_left_;
  NodeRecoveredHook node_recovered_;
  std::map<dlm::Departure, std::vector<dlm::HeldLock>> left_before_hooks_;  // guarded by hooks_mu_
  std::function<void(const std::string&)> failure_hook_;
  std::map<GlockName, Held> held_;
  std::unordered_map<dlm::LockId, GlockName> names_;
  std::unordered_map<dlm::LockId, Waiter*> waiters_;
  dlm::Status failure_ = dlm::Status::kOk;  // the lock space failed for good
  std::optional<dlm::LockId> slot_lock_;
  // Demote workers: one more is started whenever a request finds none idle (a demote can
  // wait for holders that wait for other demotes), up to kMaxWorkers.
  static constexpr size_t kMaxWorkers = 64;
  std::deque<DemoteRequest> demotes_;
  std::vector<std::thread> workers_;
  size_t idle_workers_ = 0;
  bool stopping_ = false;
};

// The running Corosync's cluster name (cmap totem.cluster_name). ENOTCONN when corosync
// does not answer.
Result<std::string> corosync_cluster_name();

}  // namespace lunfs

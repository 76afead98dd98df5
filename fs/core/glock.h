// Glocks: one cached cluster lock per object (inode, resource group, rename), in the GFS2
// style. The core asks for a glock in a mode; the glock layer asks the LockManager (the
// cluster's lock service) only when the node does not already hold a compatible mode, and
// keeps the lock after the holder is done ("a lock held is a cache", decision 5). When the
// LockManager asks for the lock back, the glock runs its type's operation table (glops.h)
// before releasing it. LockManager is the narrow interface behind which the Corosync DLM
// arrives later; NoLockManager serves single-node mounts (lockproto=nolock).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "fs/result.h"

namespace lunfs {

enum class GlockType : uint8_t { kInode = 1, kRgrp = 2, kRename = 3 };
// Shared (reads, lookups), deferred (concurrent direct I/O, decision 6), exclusive (changes).
enum class GlockMode : uint8_t { kUnlocked = 0, kShared = 1, kDeferred = 2, kExclusive = 3 };

struct GlockName {
  GlockType type;
  uint64_t number;  // inode number, rgrp index, 0 for the rename lock
  auto operator<=>(const GlockName&) const = default;
  std::string to_string() const;
};

// The cluster's lock service as the core sees it. `demote` is called by the manager when
// another node wants a lock this node holds in a conflicting mode; the glock layer answers
// by syncing/invalidating and then calling release().
class LockManager {
 public:
  using DemoteCallback = std::function<void(const GlockName&, GlockMode wanted_by_other)>;
  virtual ~LockManager() = default;
  virtual void set_demote_callback(DemoteCallback cb) = 0;
  // Blocks until the node holds `name` in at least `mode`.
  virtual Status acquire(const GlockName& name, GlockMode mode) = 0;
  virtual Status release(const GlockName& name) = 0;
  virtual std::string protocol() const = 0;
};

// Single node: every request is granted at once, nothing is ever demoted (GFS2 lock_nolock).
class NoLockManager final : public LockManager {
 public:
  void set_demote_callback(DemoteCallback) override {}
  Status acquire(const GlockName&, GlockMode) override { return Status::ok(); }
  Status release(const GlockName&) override { return Status::ok(); }
  std::string protocol() const override { return "nolock"; }
};

struct GlockOps;  // glops.h

// One glock: the mode this node holds from the LockManager (cached across operations)
// plus local holders. Local exclusion between threads of this node is the holders' job:
// the rwlock below is taken shared for kShared/kDeferred and exclusive for kExclusive.
// Asynchronous direct I/O outlives its holder (it completes on another thread), so it
// pins the glock instead (DirectIoPin); exclusive holders and demotes wait for the pins
// to drain, as Linux's truncate waits in inode_dio_wait().
class Glock {
 public:
  Glock(GlockName name, const GlockOps* ops) : name_(name), ops_(ops) {}
  const GlockName& name() const { return name_; }
  const GlockOps* ops() const { return ops_; }
  GlockMode cached_mode() const { return cached_; }

 private:
  friend class GlockTable;
  friend class GlockHolder;
  friend class DirectIoPin;
  // With holders_ held exclusively, so no new pin can start.
  void wait_for_direct_io();
  GlockName name_;
  const GlockOps* ops_;
  std::mutex state_mu_;  // guards cached_
  GlockMode cached_ = GlockMode::kUnlocked;
  std::shared_mutex holders_;
  std::mutex pins_mu_;
  std::condition_variable pins_drained_;
  uint64_t direct_io_pins_ = 0;  // guarded by pins_mu_
};

// Keeps a glock's exclusive holders and demotes away while an asynchronous direct I/O
// that started under a shared holder is in flight. Released from any thread.
class DirectIoPin {
 public:
  DirectIoPin() = default;
  DirectIoPin(DirectIoPin&& o) noexcept : gl_(o.gl_) { o.gl_ = nullptr; }
  DirectIoPin& operator=(DirectIoPin&& o) noexcept;
  DirectIoPin(const DirectIoPin&) = delete;
  ~DirectIoPin() { release(); }
  void release();

 private:
  friend class GlockHolder;
  explicit DirectIoPin(Glock* gl) : gl_(gl) {}
  Glock* gl_ = nullptr;
};

class GlockTable;

// RAII holder: the glock is held in `mode` for the holder's lifetime.
class GlockHolder {
 public:
  GlockHolder() = default;
  GlockHolder(GlockHolder&& o) noexcept : gl_(o.gl_), mode_(o.mode_) { o.gl_ = nullptr; }
  GlockHolder& operator=(GlockHolder&& o) noexcept;
  GlockHolder(const GlockHolder&) = delete;
  ~GlockHolder() { unlock(); }
  void unlock();
  // A pin for direct I/O that continues after this holder unlocks (shared holders only).
  DirectIoPin pin_direct_io();

 private:
  friend class GlockTable;
  GlockHolder(Glock* gl, GlockMode mode) : gl_(gl), mode_(mode) {}
  Glock* gl_ = nullptr;
  GlockMode mode_ = GlockMode::kUnlocked;
};

// All glocks of a mount.
class GlockTable {
 public:
  GlockTable(LockManager& lm, const GlockOps* (*ops_for)(GlockType), void* owner);
  // Takes the glock in `mode`: asks the LockManager when the cached mode is weaker, then
  // takes the local holder lock.
  Result<GlockHolder> lock(const GlockName& name, GlockMode mode);
  // The LockManager's demote request: sync, invalidate, release (runs the glops).
  void demote(const GlockName& name);
  // Releases every cached lock (unmount), syncing first.
  Status release_all();
  void* owner() const { return owner_; }
  size_t size();

 private:
  Glock& get(const GlockName& name);
  LockManager& lm_;
  const GlockOps* (*ops_for_)(GlockType);
  void* owner_;
  std::mutex mu_;
  std::map<GlockName, std::unique_ptr<Glock>> glocks_;
};

}  // namespace lunfs

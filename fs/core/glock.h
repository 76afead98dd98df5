// Glocks: one cached cluster lock per object (inode, resource group, rename), in the GFS2
// style. The core asks for a glock in a mode; the glock layer asks the LockManager (the
// cluster's lock service) only when the mode this node caches does not cover the request,
// and keeps the lock after the holder is done ("a lock held is a cache", decision 5 in docs/decisions.md). When
// the LockManager asks for the lock back, the glock runs its type's operation table
// (glops.h) — sync, then invalidate — before releasing it. LockManager is the narrow
// interface behind which the Corosync DLM arrives; NoLockManager serves single-node mounts
// (lockproto=nolock).
//
// Lock order (decision 10, docs/decisions.md), enforced here in builds with assertions:
//   1. A thread holding glocks requests a new one only if the new one sorts after every
//      glock it holds: the rename glock, then inode glocks by inode number, then rgrp
//      glocks by index (GlockName's ordering). Operations that need several inode glocks
//      look the inodes up first and then take them all in ascending order
//      (FileSystem::lock_inodes), re-checking what they looked up.
//   2. Two exceptions, each marked by a flag at the call:
//      - kNewInode: the glock of an inode this node has just allocated under its
//        directory's exclusive glock. No other node can reach the inode before the
//        directory glock is released, so nobody can hold it and wait for us.
//      - rgrp glocks are taken under meta_mu only with try_lock(), which never waits; an
//        operation that does not get one returns kGlockRetry, lets go of everything, takes
//        the rgrp glock with nothing else held, and runs again (FileSystem::retrying).
//   3. No blocking request while meta_mu is held: a demote's go_inval takes meta_mu, so a
//      thread that waited for a glock under meta_mu could wait for itself across nodes.
//   4. iopen glocks (decision 11) sort after every other type. SH is the only mode ever
//      waited for; EX is only asked with lock_if_free(), which never waits for another
//      node (a NOQUEUE request: the answer is "granted" or "in use") and so may be asked
//      under meta_mu. An EX holder therefore never makes an SH request wait for long.
//   5. The statfs glock is taken only with no other glock held (statfs, and the fold of a
//      node's delta), so it needs no place in the order; it sorts last.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "fs/core/hold_time.h"
#include "fs/result.h"

namespace lunfs {

// kIopen: "this node has the inode in use" (a frontend reference), decision 11.
// kStatfs: the master statfs block (one, number 0), into which nodes fold their deltas.
enum class GlockType : uint8_t { kRename = 1, kInode = 2, kRgrp = 3, kIopen = 4, kStatfs = 5 };
// Shared (reads, lookups: DLM PR), deferred (concurrent direct I/O, decision 6: DLM CW),
// exclusive (changes: DLM EX). EX covers every mode; SH and DF cover only themselves.
enum class GlockMode : uint8_t { kUnlocked = 0, kShared = 1, kDeferred = 2, kExclusive = 3 };

// Whether a node that caches `have` may grant a local holder of `want`.
constexpr bool mode_covers(GlockMode have, GlockMode want) {
  return want == GlockMode::kUnlocked || have == GlockMode::kExclusive || have == want;
}
// The weakest mode that covers both.
constexpr GlockMode mode_join(GlockMode a, GlockMode b) {
  if (mode_covers(a, b)) return a;
  if (mode_covers(b, a)) return b;
  return GlockMode::kExclusive;
}
const char* mode_name(GlockMode mode);

// The type comes first in the ordering, so sorting names gives the lock order.
struct GlockName {
  GlockType type;
  uint64_t number;  // inode number, rgrp index, 0 for the rename lock
  auto operator<=>(const GlockName&) const = default;
  std::string to_string() const;
};

// The error try_lock() and operations return when they need an rgrp glock they could not
// take without waiting (lock order rule 2). Never reaches a caller of FileSystem.
inline constexpr int kGlockRetry = ERESTART;

struct GlockNameHash {
  size_t operator()(const GlockName& n) const {
    return std::hash<uint64_t>()(n.number * 0x9e3779b97f4a7c15ull ^ static_cast<uint64_t>(n.type));
  }
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
  // The same only when it can be granted without waiting for anyone (no message, no
  // demote), else kGlockRetry; never blocks. A manager that must ask the cluster says no.
  virtual Status try_acquire(const GlockName& name, GlockMode) {
    return error(kGlockRetry, name.to_string() + " cannot be granted without waiting");
  }
  // Asks for `mode` without waiting for any other node to give anything up (a DLM NOQUEUE
  // request): EAGAIN when another node holds a conflicting mode. Unlike try_acquire it may
  // wait for the cluster's answer. The default serves managers that answer locally.
  virtual Status acquire_if_free(const GlockName& name, GlockMode mode) {
    Status st = try_acquire(name, mode);
    if (!st && st.err() == kGlockRetry) return error(EAGAIN, name.to_string() + " is in use elsewhere");
    return st;
  }
  virtual Status release(const GlockName& name) = 0;
  virtual std::string protocol() const = 0;
};

// Single node: every request is granted at once, nothing is ever demoted (GFS2 lock_nolock).
class NoLockManager final : public LockManager {
 public:
  void set_demote_callback(DemoteCallback) override {}
  Status acquire(const GlockName&, GlockMode) override { return Status::ok(); }
  Status try_acquire(const GlockName&, GlockMode) override { return Status::ok(); }
  Status release(const GlockName&) override { return Status::ok(); }
  std::string protocol() const override { return "nolock"; }
};

struct GlockOps;  // glops.h
class GlockTable;


// Flags of a lock request.
enum GlockFlags : unsigned {
  // Local holders of this request share the glock with other local holders even in EX: the
  // node needs the cluster lock exclusively, but this node's threads exclude each other
  // through meta_mu (allocating writes running side by side into one image).
  kLocalShared = 1u << 0,
  // The glock of an inode just allocated under the directory's EX glock (order rule 2).
  kNewInode = 1u << 1,
};

// One glock: the mode this node caches from the LockManager plus its local holders and
// direct-I/O pins, all under one mutex, so that a holder is queued in the same critical
// section that finds the cached mode sufficient: a demote cannot slip between the two.
class Glock {
 public:
  Glock(GlockName name, const GlockOps* ops, GlockTable* table) : name_(name), ops_(ops), table_(table) {}
  const GlockName& name() const { return name_; }
  const GlockOps* ops() const { return ops_; }

 private:
  friend class GlockTable;
  friend class GlockHolder;
  friend class GlockPin;
  // Whether a local holder (exclusive or shared) may join the current ones.
  bool locally_compatible(bool exclusive) const;
  // Both tell the table when the glock is left unused.
  void drop_holder(bool exclusive);
  void drop_pin();
  bool unused() const { return !shared_holders_ && !exclusive_holder_ && !direct_io_pins_; }

  const GlockName name_;
  const GlockOps* const ops_;
  GlockTable* const table_;  // told when the glock falls unused (its LRU)
  std::mutex mu_;
  std::condition_variable changed_;
  GlockMode cached_ = GlockMode::kUnlocked;  // everything below is guarded by mu_
  uint32_t shared_holders_ = 0;
  bool exclusive_holder_ = false;
  uint64_t direct_io_pins_ = 0;
  bool acquiring_ = false;  // a LockManager request is on its way
  bool demoting_ = false;   // sync/invalidate/release running: no new holders
  std::chrono::steady_clock::time_point granted_at_{};  // the last grant (minimum hold time)
  std::list<Glock*>::iterator lru_pos_;  // in GlockTable::lru_, guarded by the table's mutex
};

// Keeps a glock's exclusive holders and demotes away, and the glock cached, after the
// holder it came from has gone: an asynchronous direct I/O in flight (Linux's
// inode_dio_wait()), or an inode in use on this node (its iopen glock, decision 11).
// Released from any thread.
class GlockPin {
 public:
  GlockPin() = default;
  GlockPin(GlockPin&& o) noexcept : gl_(std::move(o.gl_)) {}
  GlockPin& operator=(GlockPin&& o) noexcept;
  GlockPin(const GlockPin&) = delete;
  ~GlockPin() { release(); }
  void release();
  bool held() const { return gl_ != nullptr; }

 private:
  friend class GlockHolder;
  explicit GlockPin(std::shared_ptr<Glock> gl) : gl_(std::move(gl)) {}
  std::shared_ptr<Glock> gl_;
};

// RAII holder: the glock is held in `mode` for the holder's lifetime.
class GlockHolder {
 public:
  GlockHolder() = default;
  GlockHolder(GlockHolder&& o) noexcept;
  GlockHolder& operator=(GlockHolder&& o) noexcept;
  GlockHolder(const GlockHolder&) = delete;
  ~GlockHolder() { unlock(); }
  void unlock();
  bool held() const { return gl_ != nullptr; }
  // A pin that continues after this holder unlocks.
  GlockPin pin();

 private:
  friend class GlockTable;
  GlockHolder(std::shared_ptr<Glock> gl, bool exclusive);
  std::shared_ptr<Glock> gl_;
  bool exclusive_ = false;
};

// All glocks of a mount.
class GlockTable {
 public:
  // `withdraw` is called when a lock cannot be given back safely (its go_sync failed).
  GlockTable(LockManager& lm, const GlockOps* (*ops_for)(GlockType), void* owner,
             std::function<void(const std::string&)> withdraw, size_t max_unused = 1u << 18);
  // Takes the glock in `mode` (flags: GlockFlags): asks the LockManager when the cached
  // mode does not cover `mode`, then queues the local holder in the same critical section.
  Result<GlockHolder> lock(const GlockName& name, GlockMode mode, unsigned flags = 0);
  // The same without waiting, for local holders or for the LockManager: kGlockRetry when a
  // local holder is in the way, or the glock is not cached in a covering mode and the
  // LockManager cannot grant one at once (try_acquire: NoLockManager always can, so a
  // single-host mount never retries).
  Result<GlockHolder> try_lock(const GlockName& name, GlockMode mode, unsigned flags = 0);
  // Takes the glock in `mode` only if that needs no waiting for another node (the
  // LockManager's acquire_if_free) nor for a local holder or pin: EAGAIN otherwise. May
  // wait for the cluster's answer; outside the lock order (rule 4), so allowed under
  // meta_mu.
  Result<GlockHolder> lock_if_free(const GlockName& name, GlockMode mode);
  // A shared local holder of whatever mode this node caches, asking nobody: for work that
  // only matters while the node holds the lock at all (writing the lazy timestamps of an
  // inode: once the glock is given back they were written or dropped). kGlockRetry when
  // the glock is not cached. Waits for a demote or an acquisition in progress and for a
  // local exclusive holder.
  Result<GlockHolder> hold_cached(const GlockName& name);
  // Gives the glock back now if nothing on this node holds, pins or is changing it (an
  // iopen glock whose inode fell out of use: another node may be waiting to free the
  // inode). Never waits for holders, so allowed under meta_mu.
  void drop_if_unused(const GlockName& name);
  // The LockManager's demote request: waits for local holders and pins, syncs,
  // invalidates, releases (runs the glops). A failing sync withdraws the mount and keeps
  // the lock: releasing it would let another node read what this node could not write.
  void demote(const GlockName& name);
  // Releases every cached lock (unmount), syncing first.
  Status release_all();
  void* owner() const { return owner_; }
  // Glocks in the table (held, cached or being used).
  size_t size();
  // One line per glock that is held, pinned, cached or being changed: name, cached mode,
  // holders, pins, state (for a hang's post-mortem).
  std::string dump();
  // The most glocks kept cached without holders; beyond it the least recently used are
  // demoted and forgotten (GFS2's glock shrinker, run when memory asks).
  void set_max_unused(size_t n);

 private:
  std::shared_ptr<Glock> get(const GlockName& name);
  // With the table's mutex: unused glocks beyond max_unused_, oldest first.
  std::vector<std::shared_ptr<Glock>> take_excess_locked();
  void shrink();
  friend class Glock;
  // Sync, invalidate, release; called with demoting_ set and no holders or pins.
  Status give_back(Glock& gl);
  // The same with the glock's mutex held through `lock` (released while the glops run),
  // setting the cached mode to unlocked when it worked.
  Status give_back_locked(Glock& gl, std::unique_lock<std::mutex>& lock);
  void note_unused(Glock& gl);
  LockManager& lm_;
  const GlockOps* (*ops_for_)(GlockType);
  void* owner_;
  std::function<void(const std::string&)> withdraw_;
  std::mutex mu_;
  // Every inode a node has looked at has a glock: hashed, as a tree of a few hundred
  // thousand names cost lookup a microsecond (dir_scale_bench).
  std::unordered_map<GlockName, std::shared_ptr<Glock>, GlockNameHash> glocks_;
  // Unused (no holders, no pins) glocks, least recently used first.
  std::list<Glock*> lru_;
  size_t max_unused_;
  HoldTime hold_;  // guarded by mu_
};

// The metadata mutex (Volume::meta_mu): serialises this node's metadata changes and cache
// lookups. Not recursive. It remembers its owner so that the glock layer can refuse a
// blocking glock request made under it (lock order rule 3).
class MetaMutex {
 public:
  void lock();
  void unlock();
  bool try_lock();
  // Whether the calling thread holds a MetaMutex.
  static bool held_by_this_thread();

 private:
  std::mutex mu_;
  std::atomic<std::thread::id> owner_{};
};

}  // namespace lunfs

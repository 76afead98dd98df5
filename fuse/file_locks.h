// fcntl (POSIX and OFD) and flock locks of a mount.lunfs mount (decision 12): the FUSE
// handlers' side of dlm/plock_table.h. A cluster mount sends every change through its lock
// space (one agreed delivery, decided alike on every node); a single-host mount drives a
// local table of the same kind under a mutex, without messages.
//
// What ends a lock, and how it reaches us (docs/cluster.md, "File locks"):
//  - POSIX: any close of the file by the owning process: FLUSH carries the owner;
//  - OFD: the release of the open file description they were taken through. Nothing marks
//    a lock as OFD, so a handle remembers the owners that locked through it; a FLUSH of
//    an owner (a POSIX owner: the kernel sends one before any handle of that process can
//    go) forgets it there; whoever is left at RELEASE is the handle's own OFD owner;
//  - flock: RELEASE (FUSE_RELEASE_FLOCK_UNLOCK);
//  - a dead process closes its files (the above); a dead node's locks go when it leaves
//    the lock space.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "dlm/lockspace.h"
#include "dlm/plock_table.h"

namespace lunfs {

class FileLocks {
 public:
  using Done = std::function<void(const dlm::PlockResult&)>;

  // Without a lock space: a single-host mount's local table. A cluster mount attaches
  // its lock space before the FUSE session starts; the FileLocks outlives it (the lock
  // space answers what still waits when it goes).
  FileLocks() = default;
  void attach(dlm::LockSpace* ls) { ls_ = ls; }

  // The node id that owners of this mount carry (F_GETLK reports pids of this node only).
  dlm::NodeId self() const;

  // Runs `op`; `done` gets its result once, on this thread or later on another (the lock
  // space's delivery thread, or the thread whose unlock granted a waiter). A request that
  // may wait is named by `key` (the FUSE request) so that interrupt(key) can stop it.
  void submit(dlm::PlockOp op, Done done, const void* key = nullptr);
  // The kernel interrupted request `key` (a signal to the waiting process): stop waiting;
  // its `done` gets EINTR, or its grant if that came first.
  void interrupt(const void* key);

  // Handle bookkeeping (see the header comment). A lock or flock taken through `fh`:
  void taken_through(uint64_t fh, dlm::PlockClass cls, uint64_t owner);
  // FLUSH of `owner` through `fh`: POSIX owner, its locks on `ino` go. Returns whether
  // there is anything to release (else the flush needs no message).
  bool flushed(uint64_t fh, uint64_t ino, uint64_t owner);
  // RELEASE of `fh`: the (class, owner) pairs whose locks go with it. `flock_owner` is
  // the owner RELEASE carries with FUSE_RELEASE_FLOCK_UNLOCK, if it does.
  std::vector<std::pair<dlm::PlockClass, uint64_t>> released(uint64_t fh, uint64_t ino,
                                                             std::optional<uint64_t> flock_owner);

 private:
  struct Wait {
    uint64_t req = 0;  // 0 until submitted
    bool interrupted = false;
    // Tells this wait from a later one of a FUSE request at the same address (a request
    // decided at once is answered and freed before submit() looks at its entry again).
    uint64_t generation = 0;
  };
  struct Handle {
    std::set<uint64_t> posix_owners;
    std::set<uint64_t> flock_owners;
  };
  using Key = std::tuple<uint64_t, dlm::PlockClass, uint64_t>;  // inode, class, owner

  uint64_t send(dlm::PlockOp op, Done done);
  void cancel(uint64_t req);
  // Applies `op` to the single-host table and runs the callbacks of what it decided.
  void apply_local(const dlm::PlockOp& op);
  bool may_hold(uint64_t ino, dlm::PlockClass cls, uint64_t owner) const;

  dlm::LockSpace* ls_ = nullptr;
  mutable std::mutex mu_;
  std::unordered_map<const void*, Wait> waits_;
  uint64_t generation_ = 0;
  std::unordered_map<uint64_t, Handle> handles_;
  std::map<Key, int> in_flight_;  // operations sent and not yet decided, by owner

  // The single-host table (ls_ null), guarded by mu_.
  dlm::PlockTable local_{0};
  uint64_t next_req_ = 1;
  std::unordered_map<uint64_t, Done> local_done_;
};

}  // namespace lunfs

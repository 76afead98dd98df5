// LockCache: "a lock held is a cache" (architecture decision 5, docs/decisions.md) at its simplest. A node
// keeps each lock after use and re-uses it locally — zero messages — while it holds a
// mode that covers the new wish; it gives the lock up only when a blocking callback says
// another node waits, and then as soon as no local user holds it (new local users wait
// meanwhile, so the remote waiter is not starved). The file system's glock layer is the
// real owner of this policy (with its sync/invalidate hooks); this class is its minimal
// form, used by the lock-manager benchmarks and as the reference for glocks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <unordered_map>

#include "dlm/lockspace.h"

namespace lunfs::dlm {

class LockCache : public LockClient {
 public:
  // Must be called before the lock space delivers anything that involves this cache.
  void attach(LockSpace* ls) { ls_ = ls; }

  Status acquire(const std::string& name, Mode mode, std::chrono::milliseconds timeout);
  void release(const std::string& name);

  uint64_t local_hits() const;   // acquisitions served without any message
  uint64_t remote_grants() const;  // acquisitions that needed a grant

  void completion(uint64_t cookie, LockId id, Status status, Mode mode, const Lvb& lvb) override;
  void blocking(uint64_t cookie, LockId id, Mode requested) override;
  void recover(const Departure&, const std::vector<HeldLock>&) override {}

 private:
  struct Entry {
    LockId id = 0;
    Mode mode = Mode::NL;
    int users = 0;
    bool held = false;
    bool pending = false;
    bool demote = false;  // a remote node waits: give up once unused
    Status last = Status::kOk;
  };
  Entry* by_id(LockId id);
  void give_up(Entry& e);

  LockSpace* ls_ = nullptr;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, Entry> entries_;
  std::unordered_map<LockId, std::string> names_;
  uint64_t hits_ = 0, grants_ = 0;
};

}  // namespace lunfs::dlm

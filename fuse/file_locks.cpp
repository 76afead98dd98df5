// FileLocks; see file_locks.h.
#include "fuse/file_locks.h"

#include <cerrno>

namespace lunfs {

dlm::NodeId FileLocks::self() const { return ls_ ? ls_->node_id() : 0; }

bool FileLocks::may_hold(uint64_t ino, dlm::PlockClass cls, uint64_t owner) const {
  {
    std::lock_guard lock(mu_);
    if (auto it = in_flight_.find({ino, cls, owner}); it != in_flight_.end()) return true;
    if (!ls_) return local_.has(ino, cls, {0, owner});
  }
  return ls_->plock_held(ino, cls, owner);
}

// Sends (or applies) one operation; `done` runs without mu_ held.
uint64_t FileLocks::send(dlm::PlockOp op, Done done) {
  const Key key{op.ino, op.cls, op.owner};
  Done counted = [this, key, done = std::move(done)](const dlm::PlockResult& r) {
    {
      std::lock_guard lock(mu_);
      if (auto it = in_flight_.find(key); it != in_flight_.end() && --it->second == 0) in_flight_.erase(it);
    }
    done(r);
  };
  {
    std::lock_guard lock(mu_);
    ++in_flight_[key];
  }
  if (ls_) {
    uint64_t req = 0;
    if (dlm::Status st = ls_->plock(op, counted, &req); st != dlm::Status::kOk) {
      counted({0, ENOLCK, std::nullopt});  // the lock space is gone (corosync stopped, or cut off)
      return 0;
    }
    return req;
  }
  uint64_t req;
  {
    std::lock_guard lock(mu_);
    req = op.req = next_req_++;
    local_done_[req] = std::move(counted);
  }
  apply_local(op);
  return req;
}

void FileLocks::apply_local(const dlm::PlockOp& op) {
  std::vector<dlm::PlockResult> results;
  std::vector<std::pair<Done, dlm::PlockResult>> calls;
  {
    std::lock_guard lock(mu_);
    local_.apply(0, op, true, results);
    for (dlm::PlockResult& r : results) {
      auto it = local_done_.find(r.req);
      if (it == local_done_.end()) continue;
      calls.emplace_back(std::move(it->second), std::move(r));
      local_done_.erase(it);
    }
  }
  for (auto& [d, r] : calls) d(r);
}

void FileLocks::cancel(uint64_t req) {
  if (ls_) {
    (void)ls_->plock_cancel(req);  // kNotFound: decided meanwhile, its result is on its way
    return;
  }
  apply_local(dlm::PlockOp{.cmd = dlm::PlockCmd::kCancel, .req = req});
}

void FileLocks::submit(dlm::PlockOp op, Done done, const void* key) {
  if (!key) {
    (void)send(op, std::move(done));
    return;
  }
  uint64_t generation;
  {
    std::lock_guard lock(mu_);
    generation = ++generation_;
    waits_[key] = Wait{.generation = generation};
  }
  Done forget = [this, key, done = std::move(done)](const dlm::PlockResult& r) {
    {
      std::lock_guard lock(mu_);
      waits_.erase(key);
    }
    done(r);
  };
  const uint64_t req = send(op, std::move(forget));
  bool cancel_now = false;
  {
    std::lock_guard lock(mu_);
    auto it = waits_.find(key);
    if (it != waits_.end() && it->second.generation == generation) {
      it->second.req = req;
      cancel_now = it->second.interrupted;
    }
  }
  if (cancel_now) cancel(req);
}

void FileLocks::interrupt(const void* key) {
  uint64_t req = 0;
  {
    std::lock_guard lock(mu_);
    auto it = waits_.find(key);
    if (it == waits_.end()) return;  // answered already
    if (it->second.req == 0) {
      it->second.interrupted = true;  // not sent yet: submit() cancels it once it is
      return;
    }
    req = it->second.req;
  }
  cancel(req);
}

void FileLocks::taken_through(uint64_t fh, dlm::PlockClass cls, uint64_t owner) {
  std::lock_guard lock(mu_);
  Handle& h = handles_[fh];
  (cls == dlm::PlockClass::kFlock ? h.flock_owners : h.posix_owners).insert(owner);
}

bool FileLocks::flushed(uint64_t fh, uint64_t ino, uint64_t owner) {
  {
    std::lock_guard lock(mu_);
    if (auto it = handles_.find(fh); it != handles_.end()) it->second.posix_owners.erase(owner);
  }
  return may_hold(ino, dlm::PlockClass::kPosix, owner);
}

std::vector<std::pair<dlm::PlockClass, uint64_t>> FileLocks::released(uint64_t fh, uint64_t ino,
                                                                      std::optional<uint64_t> flock_owner) {
  Handle h;
  {
    std::lock_guard lock(mu_);
    if (auto it = handles_.find(fh); it != handles_.end()) {
      h = std::move(it->second);
      handles_.erase(it);
    }
  }
  if (flock_owner) h.flock_owners.insert(*flock_owner);
  std::vector<std::pair<dlm::PlockClass, uint64_t>> out;
  for (uint64_t o : h.posix_owners)
    if (may_hold(ino, dlm::PlockClass::kPosix, o)) out.emplace_back(dlm::PlockClass::kPosix, o);
  for (uint64_t o : h.flock_owners)
    if (may_hold(ino, dlm::PlockClass::kFlock, o)) out.emplace_back(dlm::PlockClass::kFlock, o);
  return out;
}

}  // namespace lunfs

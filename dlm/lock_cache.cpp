// LockCache (see lock_cache.h).
#include "dlm/lock_cache.h"

namespace lunfs::dlm {

LockCache::Entry* LockCache::by_id(LockId id) {
  auto n = names_.find(id);
  return n == names_.end() ? nullptr : &entries_[n->second];
}

void LockCache::give_up(Entry& e) {
  // Fails only when the lock space has failed (which drops every lock) or the lock is being
  // released already: either way it is gone.
  (void)ls_->unlock(e.id);
  names_.erase(e.id);
  e = Entry{};
  cv_.notify_all();
}

Status LockCache::acquire(const std::string& name, Mode mode, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lk(mu_);
  for (;;) {
    Entry& e = entries_[name];
    if (e.held && !e.pending && !e.demote && covers(e.mode, mode)) {
      ++e.users;
      ++hits_;
      return Status::kOk;
    }
    if (!e.pending && !e.demote) {
      Status s = e.held ? ls_->convert(e.id, mode, 0) : ls_->request(name, mode, 0, 0, &e.id);
      if (s != Status::kOk) return s;
      names_[e.id] = name;
      e.pending = true;
      cv_.wait_until(lk, deadline, [&] { return !entries_[name].pending; });
      Entry& done = entries_[name];
      if (done.pending) {
        // Its completion clears `pending`; when cancel fails, the request has completed or the
        // lock space failed, and that completion comes all the same.
        (void)ls_->cancel(done.id);
        return Status::kTimedOut;
      }
      if (done.last != Status::kOk) return done.last;
      ++done.users;
      ++grants_;
      return Status::kOk;
    }
    if (!cv_.wait_until(lk, deadline, [&] {
          Entry& x = entries_[name];
          return !x.pending && !x.demote;
        }))
      return Status::kTimedOut;
  }
}

void LockCache::release(const std::string& name) {
  std::lock_guard g(mu_);
  Entry& e = entries_[name];
  if (--e.users == 0 && e.demote && e.held) give_up(e);
}

void LockCache::completion(uint64_t, LockId id, Status status, Mode mode, const Lvb&) {
  std::lock_guard g(mu_);
  Entry* e = by_id(id);
  if (!e) return;
  e->pending = false;
  e->last = status;
  if (status == Status::kOk) {
    e->held = true;
    e->mode = mode;
  } else if (!e->held) {
    names_.erase(id);
    *e = Entry{.last = status};
  }
  cv_.notify_all();  // the acquirer takes it; its release() gives it up if demoted
}

void LockCache::blocking(uint64_t, LockId id, Mode) {
  std::lock_guard g(mu_);
  Entry* e = by_id(id);
  if (!e) return;
  e->demote = true;
  if (e->users == 0 && e->held && !e->pending) give_up(*e);
}

uint64_t LockCache::local_hits() const {
  std::lock_guard g(mu_);
  return hits_;
}

uint64_t LockCache::remote_grants() const {
  std::lock_guard g(mu_);
  return grants_;
}

}  // namespace lunfs::dlm

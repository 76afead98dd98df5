// Glock table, holders and the metadata mutex; see glock.h.
#include "fs/core/glock.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "fs/core/glops.h"

namespace lunfs {

namespace {

// Glocks this thread holds, for the lock-order assertions (glock.h).
thread_local std::vector<GlockName> t_held;
thread_local int t_meta_mutexes = 0;

void note_held(const GlockName& name) { t_held.push_back(name); }

void note_released(const GlockName& name) {
  // A holder released on another thread than it was taken on is simply not found here.
  auto it = std::find(t_held.rbegin(), t_held.rend(), name);
  if (it != t_held.rend()) t_held.erase(std::next(it).base());
}

[[noreturn, maybe_unused]] void order_violation(const std::string& what) {
  std::fprintf(stderr, "lunfs: glock order violated: %s\n", what.c_str());
  std::abort();
}

// Lock order rules 1 and 3 (glock.h), checked in builds with assertions.
void check_order([[maybe_unused]] const GlockName& name, [[maybe_unused]] unsigned flags) {
#ifndef NDEBUG
  if (MetaMutex::held_by_this_thread()) order_violation("blocking request for " + name.to_string() + " under meta_mu");
  if (flags & kNewInode) return;
  for (const GlockName& h : t_held) {
    if (!(h < name)) order_violation("request for " + name.to_string() + " while holding " + h.to_string());
  }
#endif
}

}  // namespace

const char* mode_name(GlockMode mode) {
  switch (mode) {
    case GlockMode::kUnlocked: return "UN";
    case GlockMode::kShared: return "SH";
    case GlockMode::kDeferred: return "DF";
    case GlockMode::kExclusive: return "EX";
  }
  return "?";
}

std::string GlockName::to_string() const {
  const char* t = type == GlockType::kInode  ? "inode"
                  : type == GlockType::kRgrp ? "rgrp"
                  : type == GlockType::kIopen ? "iopen"
                  : type == GlockType::kStatfs ? "statfs"
                                              : "rename";
  return std::string(t) + ":" + std::to_string(number);
}

bool Glock::locally_compatible(bool exclusive) const {
  if (exclusive_holder_) return false;
  if (exclusive) return shared_holders_ == 0 && direct_io_pins_ == 0;
  return true;
}

void Glock::drop_holder(bool exclusive) {
  bool now_unused;
  {
    std::lock_guard lock(mu_);
    if (exclusive) {
      exclusive_holder_ = false;
    } else {
      shared_holders_ -= 1;
    }
    now_unused = unused();
    changed_.notify_all();
  }
  if (now_unused) table_->note_unused(*this);
}

void Glock::drop_pin() {
  bool now_unused;
  {
    std::lock_guard lock(mu_);
    if (--direct_io_pins_ == 0) changed_.notify_all();
    now_unused = unused();
  }
  if (now_unused) table_->note_unused(*this);
}

GlockHolder::GlockHolder(std::shared_ptr<Glock> gl, bool exclusive) : gl_(std::move(gl)), exclusive_(exclusive) {
  note_held(gl_->name());
}

GlockHolder::GlockHolder(GlockHolder&& o) noexcept
    : gl_(std::move(o.gl_)), exclusive_(o.exclusive_) {}

GlockHolder& GlockHolder::operator=(GlockHolder&& o) noexcept {
  if (this != &o) {
    unlock();
    gl_ = std::move(o.gl_);
    exclusive_ = o.exclusive_;
  }
  return *this;
}

void GlockHolder::unlock() {
  if (!gl_) return;
  note_released(gl_->name());
  gl_->drop_holder(exclusive_);
  gl_.reset();
}

GlockPin GlockHolder::pin() {
  std::lock_guard lock(gl_->mu_);
  gl_->direct_io_pins_ += 1;
  return GlockPin(gl_);
}

GlockPin& GlockPin::operator=(GlockPin&& o) noexcept {
  if (this != &o) {
    release();
    gl_ = std::move(o.gl_);
  }
  return *this;
}

void GlockPin::release() {
  if (!gl_) return;
  gl_->drop_pin();
  gl_.reset();
}

GlockTable::GlockTable(LockManager& lm, const GlockOps* (*ops_for)(GlockType), void* owner,
                       std::function<void(const std::string&)> withdraw, size_t max_unused)
    : lm_(lm), ops_for_(ops_for), owner_(owner), withdraw_(std::move(withdraw)), max_unused_(max_unused) {
  lm_.set_demote_callback([this](const GlockName& name, GlockMode) { demote(name); });
}

std::shared_ptr<Glock> GlockTable::get(const GlockName& name) {
  std::lock_guard lock(mu_);
  auto& slot = glocks_[name];
  if (!slot) {
    slot = std::make_shared<Glock>(name, ops_for_(name.type), this);
    slot->lru_pos_ = lru_.end();
  } else if (slot->lru_pos_ != lru_.end()) {
    lru_.erase(slot->lru_pos_);
    slot->lru_pos_ = lru_.end();
  }
  return slot;
}

size_t GlockTable::size() {
  std::lock_guard lock(mu_);
  return glocks_.size();
}

std::string GlockTable::dump() {
  std::vector<std::shared_ptr<Glock>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [n, g] : glocks_) all.push_back(g);
  }
  std::string out;
  for (auto& gl : all) {
    std::lock_guard lock(gl->mu_);
    out += gl->name().to_string() + " " + mode_name(gl->cached_) + " holders=" +
           std::to_string(gl->shared_holders_) + (gl->exclusive_holder_ ? "+EX" : "") +
           " pins=" + std::to_string(gl->direct_io_pins_) + (gl->acquiring_ ? " acquiring" : "") +
           (gl->demoting_ ? " demoting" : "") + "\n";
  }
  return out;
}

void GlockTable::set_max_unused(size_t n) {
  {
    std::lock_guard lock(mu_);
    max_unused_ = n;
  }
  shrink();
}

void GlockTable::note_unused(Glock& gl) {
  bool over;
  {
    std::lock_guard lock(mu_);
    auto it = glocks_.find(gl.name());
    // Already freed by the shrinker (this is its last user), or back in use.
    if (it == glocks_.end() || it->second.get() != &gl) return;
    if (gl.lru_pos_ == lru_.end()) gl.lru_pos_ = lru_.insert(lru_.end(), &gl);
    over = lru_.size() > max_unused_;
  }
  // The shrinker runs go_sync, which takes meta_mu: under it (an iopen pin let go while an
  // inode is forgotten), the next glock to fall unused outside it shrinks instead.
  if (over && !MetaMutex::held_by_this_thread()) shrink();
}

std::vector<std::shared_ptr<Glock>> GlockTable::take_excess_locked() {
  std::vector<std::shared_ptr<Glock>> out;
  while (lru_.size() > max_unused_) {
    Glock* gl = lru_.front();
    lru_.pop_front();
    gl->lru_pos_ = lru_.end();
    auto it = glocks_.find(gl->name());
    out.push_back(it->second);
    glocks_.erase(it);
  }
  return out;
}

void GlockTable::shrink() {
  std::vector<std::shared_ptr<Glock>> excess;
  {
    std::lock_guard lock(mu_);
    excess = take_excess_locked();
  }
  for (auto& gl : excess) {
    std::unique_lock lock(gl->mu_);
    // Out of the table, so nobody new finds it; a thread that got it just before waits here.
    gl->changed_.wait(lock, [&] { return !gl->demoting_ && !gl->acquiring_; });
    if (gl->shared_holders_ || gl->exclusive_holder_ || gl->direct_io_pins_ || gl->cached_ == GlockMode::kUnlocked) {
      continue;
    }
    (void)give_back_locked(*gl, lock);  // a failure has withdrawn the mount (give_back)
  }
}

Result<GlockHolder> GlockTable::lock(const GlockName& name, GlockMode mode, unsigned flags) {
  check_order(name, flags);
  std::shared_ptr<Glock> glp = get(name);
  Glock& gl = *glp;
  const bool exclusive = mode == GlockMode::kExclusive && !(flags & kLocalShared);
  std::unique_lock lock(gl.mu_);
  for (;;) {
    gl.changed_.wait(lock, [&] { return !gl.demoting_ && !gl.acquiring_ && gl.locally_compatible(exclusive); });
    if (mode_covers(gl.cached_, mode)) break;
    // Holders present keep the mode they hold: ask for one that covers them and us.
    const bool in_use = gl.shared_holders_ || gl.exclusive_holder_ || gl.direct_io_pins_;
    const GlockMode want = in_use ? mode_join(gl.cached_, mode) : mode;
    gl.acquiring_ = true;
    lock.unlock();
    Status st = lm_.acquire(name, want);
    lock.lock();
    gl.acquiring_ = false;
    if (st) {
      gl.cached_ = want;
      gl.granted_at_ = std::chrono::steady_clock::now();
    }
    gl.changed_.notify_all();
    if (!st && st.err() == EDEADLK && gl.cached_ != GlockMode::kUnlocked && !gl.shared_holders_ &&
        !gl.exclusive_holder_ && !gl.direct_io_pins_) {
      // The lock manager refused the conversion as a deadlock: another node's conversion
      // waits for the mode this node caches, and would wait for ever while we wait too.
      // Nothing here uses the cached mode, so give it back (sync, invalidate, release) and
      // ask again from unlocked, which queues behind the other node instead.
      LUNFS_TRY(give_back_locked(gl, lock));
      continue;
    }
    if (!st) return st;
    // Loop: a demote may have run since the grant; the holder is queued only together
    // with a check of the cached mode.
  }
  if (exclusive) {
    gl.exclusive_holder_ = true;
  } else {
    gl.shared_holders_ += 1;
  }
  return GlockHolder(std::move(glp), exclusive);
}

Result<GlockHolder> GlockTable::try_lock(const GlockName& name, GlockMode mode, unsigned flags) {
  std::shared_ptr<Glock> glp = get(name);
  Glock& gl = *glp;
  const bool exclusive = mode == GlockMode::kExclusive && !(flags & kLocalShared);
  std::unique_lock lock(gl.mu_);
  bool available = !gl.demoting_ && !gl.acquiring_ && gl.locally_compatible(exclusive);
  if (available && !mode_covers(gl.cached_, mode)) {
    const bool in_use = gl.shared_holders_ || gl.exclusive_holder_ || gl.direct_io_pins_;
    const GlockMode want = in_use ? mode_join(gl.cached_, mode) : mode;
    available = lm_.try_acquire(name, want).is_ok();  // never blocks, so under mu_
    if (available) gl.cached_ = want;
  }
  if (!available) {
    lock.unlock();
    glp.reset();
    return error(kGlockRetry, name.to_string() + " is not available without waiting");
  }
  if (exclusive) {
    gl.exclusive_holder_ = true;
  } else {
    gl.shared_holders_ += 1;
  }
  return GlockHolder(std::move(glp), exclusive);
}

Result<GlockHolder> GlockTable::lock_if_free(const GlockName& name, GlockMode mode) {
  std::shared_ptr<Glock> glp = get(name);
  Glock& gl = *glp;
  const bool exclusive = mode == GlockMode::kExclusive;
  std::unique_lock lock(gl.mu_);
  if (gl.demoting_ || gl.acquiring_ || !gl.locally_compatible(exclusive)) {
    return error(EAGAIN, name.to_string() + " is in use on this node");
  }
  if (!mode_covers(gl.cached_, mode)) {
    const bool in_use = gl.shared_holders_ || gl.exclusive_holder_ || gl.direct_io_pins_;
    const GlockMode want = in_use ? mode_join(gl.cached_, mode) : mode;
    gl.acquiring_ = true;
    lock.unlock();
    Status st = lm_.acquire_if_free(name, want);
    lock.lock();
    gl.acquiring_ = false;
    if (st) gl.cached_ = want;
    gl.changed_.notify_all();
    if (!st) return st;
    // Nobody local could join meanwhile: acquiring_ kept them waiting, and they re-check.
  }
  if (exclusive) {
    gl.exclusive_holder_ = true;
  } else {
    gl.shared_holders_ += 1;
  }
  return GlockHolder(std::move(glp), exclusive);
}

Result<GlockHolder> GlockTable::hold_cached(const GlockName& name) {
  std::shared_ptr<Glock> glp = get(name);
  Glock& gl = *glp;
  std::unique_lock lock(gl.mu_);
  gl.changed_.wait(lock, [&] { return !gl.demoting_ && !gl.acquiring_ && gl.locally_compatible(false); });
  if (gl.cached_ == GlockMode::kUnlocked) {
    lock.unlock();
    note_unused(gl);
    return error(kGlockRetry, name.to_string() + " is not held by this node");
  }
  gl.shared_holders_ += 1;
  return GlockHolder(std::move(glp), false);
}

void GlockTable::drop_if_unused(const GlockName& name) {
  std::shared_ptr<Glock> glp = get(name);
  Glock& gl = *glp;
  {
    std::unique_lock lock(gl.mu_);
    if (gl.demoting_ || gl.acquiring_ || !gl.unused() || gl.cached_ == GlockMode::kUnlocked) return;
    (void)give_back_locked(gl, lock);  // a failure has withdrawn the mount (give_back)
  }
  note_unused(gl);
}

Status GlockTable::give_back(Glock& gl) {
  const GlockName& name = gl.name();
  if (gl.ops_ && gl.ops_->go_sync) {
    Status st = gl.ops_->go_sync(owner_, name);
    if (!st) {
      withdraw_("cannot write back what " + name.to_string() + " covers before giving it up: " + st.to_string());
      return st;
    }
  }
  // Invalidate before the release (decision 8): once released, another node may change
  // what this node still has cached.
  if (gl.ops_ && gl.ops_->go_inval) gl.ops_->go_inval(owner_, name);
  return lm_.release(name);
}

Status GlockTable::give_back_locked(Glock& gl, std::unique_lock<std::mutex>& lock) {
  // demoting_ keeps new holders out while the glops run without the glock's mutex: they
  // take meta_mu, and a thread holding meta_mu may be waiting for this mutex in try_lock.
  gl.demoting_ = true;
  lock.unlock();
  Status st = give_back(gl);
  lock.lock();
  gl.demoting_ = false;
  if (st) gl.cached_ = GlockMode::kUnlocked;
  gl.changed_.notify_all();
  return st;
}

void GlockTable::demote(const GlockName& name) {
  std::shared_ptr<Glock> glp = get(name);
  Glock& gl = *glp;
  std::unique_lock lock(gl.mu_);
  if (gl.ops_ && gl.ops_->go_wanted && !gl.unused()) {
    // In use here: ask the users to let go instead of waiting for them (glops.h); the lock
    // goes back when the last of them does (drop_if_unused).
    lock.unlock();
    gl.ops_->go_wanted(owner_, name);
    return;
  }
  if (name.type == GlockType::kInode) {
    // The minimum hold time (hold_time.h): a lock in use right now stays until its hold
    // after the grant has passed; the wait lets holders come and go meanwhile.
    const auto now = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point until;
    {
      std::lock_guard table(mu_);
      until = hold_.demote_at(name.number, gl.granted_at_, now, !gl.unused());
    }
    if (until > now) gl.changed_.wait_until(lock, until, [] { return false; });
  }
  gl.changed_.wait(lock, [&] {
    return !gl.demoting_ && !gl.acquiring_ && !gl.shared_holders_ && !gl.exclusive_holder_ && !gl.direct_io_pins_;
  });
  // A failure has withdrawn the mount and kept the lock (give_back).
  if (gl.cached_ != GlockMode::kUnlocked) (void)give_back_locked(gl, lock);
  lock.unlock();
  note_unused(gl);
}

Status GlockTable::release_all() {
  std::vector<std::shared_ptr<Glock>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [n, g] : glocks_) all.push_back(g);
  }
  Status first;
  for (auto& gl : all) {
    std::unique_lock lock(gl->mu_);
    gl->changed_.wait(lock, [&] { return !gl->demoting_ && !gl->acquiring_ && !gl->direct_io_pins_; });
    if (gl->cached_ == GlockMode::kUnlocked) continue;
    Status st = give_back_locked(*gl, lock);
    if (!st && first) first = st;
  }
  return first;
}

void MetaMutex::lock() {
  // Re-entering would deadlock on the std::mutex without a word: say where instead.
  if (owner_.load(std::memory_order_relaxed) == std::this_thread::get_id()) {
    std::fprintf(stderr, "lunfs: meta_mu locked twice by one thread (it is not recursive)\n");
    std::abort();
  }
  mu_.lock();
  owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  ++t_meta_mutexes;
}

void MetaMutex::unlock() {
  --t_meta_mutexes;
  owner_.store(std::thread::id(), std::memory_order_relaxed);
  mu_.unlock();
}

bool MetaMutex::try_lock() {
  if (!mu_.try_lock()) return false;
  owner_.store(std::this_thread::get_id(), std::memory_order_relaxed);
  ++t_meta_mutexes;
  return true;
}

bool MetaMutex::held_by_this_thread() { return t_meta_mutexes > 0; }

}  // namespace lunfs

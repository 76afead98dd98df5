// Glock table and holders; see glock.h.
#include "fs/core/glock.h"

#include "fs/core/glops.h"

namespace lunfs {

std::string GlockName::to_string() const {
  const char* t = type == GlockType::kInode ? "inode" : type == GlockType::kRgrp ? "rgrp" : "rename";
  return std::string(t) + ":" + std::to_string(number);
}

GlockHolder& GlockHolder::operator=(GlockHolder&& o) noexcept {
  if (this != &o) {
    unlock();
    gl_ = o.gl_;
    mode_ = o.mode_;
    o.gl_ = nullptr;
  }
  return *this;
}

void GlockHolder::unlock() {
  if (!gl_) return;
  if (mode_ == GlockMode::kExclusive) {
    gl_->holders_.unlock();
  } else {
    gl_->holders_.unlock_shared();
  }
  gl_ = nullptr;
}

DirectIoPin GlockHolder::pin_direct_io() {
  std::lock_guard lock(gl_->pins_mu_);
  gl_->direct_io_pins_ += 1;
  return DirectIoPin(gl_);
}

DirectIoPin& DirectIoPin::operator=(DirectIoPin&& o) noexcept {
  if (this != &o) {
    release();
    gl_ = o.gl_;
    o.gl_ = nullptr;
  }
  return *this;
}

void DirectIoPin::release() {
  if (!gl_) return;
  {
    std::lock_guard lock(gl_->pins_mu_);
    if (--gl_->direct_io_pins_ == 0) gl_->pins_drained_.notify_all();
  }
  gl_ = nullptr;
}

void Glock::wait_for_direct_io() {
  std::unique_lock lock(pins_mu_);
  pins_drained_.wait(lock, [this] { return direct_io_pins_ == 0; });
}

GlockTable::GlockTable(LockManager& lm, const GlockOps* (*ops_for)(GlockType), void* owner)
    : lm_(lm), ops_for_(ops_for), owner_(owner) {
  lm_.set_demote_callback([this](const GlockName& name, GlockMode) { demote(name); });
}

Glock& GlockTable::get(const GlockName& name) {
  std::lock_guard lock(mu_);
  auto& slot = glocks_[name];
  if (!slot) slot = std::make_unique<Glock>(name, ops_for_(name.type));
  return *slot;
}

size_t GlockTable::size() {
  std::lock_guard lock(mu_);
  return glocks_.size();
}

Result<GlockHolder> GlockTable::lock(const GlockName& name, GlockMode mode) {
  Glock& gl = get(name);
  {
    std::lock_guard state(gl.state_mu_);
    if (gl.cached_ < mode) {
      LUNFS_TRY(lm_.acquire(name, mode));
      gl.cached_ = mode;
    }
  }
  if (mode == GlockMode::kExclusive) {
    gl.holders_.lock();
    gl.wait_for_direct_io();
  } else {
    gl.holders_.lock_shared();
  }
  return GlockHolder(&gl, mode);
}

void GlockTable::demote(const GlockName& name) {
  Glock& gl = get(name);
  // Wait for local holders to finish, then sync, release and invalidate.
  std::unique_lock holders(gl.holders_);
  gl.wait_for_direct_io();
  std::lock_guard state(gl.state_mu_);
  if (gl.cached_ == GlockMode::kUnlocked) return;
  if (gl.ops_ && gl.ops_->go_sync) (void)gl.ops_->go_sync(owner_, name);
  (void)lm_.release(name);
  gl.cached_ = GlockMode::kUnlocked;
  if (gl.ops_ && gl.ops_->go_inval) gl.ops_->go_inval(owner_, name);
}

Status GlockTable::release_all() {
  std::map<GlockName, Glock*> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [n, g] : glocks_) all[n] = g.get();
  }
  Status first;
  for (auto& [n, g] : all) {
    g->wait_for_direct_io();
    std::lock_guard state(g->state_mu_);
    if (g->cached_ == GlockMode::kUnlocked) continue;
    if (g->ops_ && g->ops_->go_sync) {
      auto st = g->ops_->go_sync(owner_, n);
      if (!st && first) first = st;
    }
    auto st = lm_.release(n);
    if (!st && first) first = st;
    g->cached_ = GlockMode::kUnlocked;
  }
  return first;
}

}  // namespace lunfs

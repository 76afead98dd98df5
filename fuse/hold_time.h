// The minimum hold time against ping-pong (GFS2's gl_hold_time): a node keeps an inode
// glock for a while after the grant before it honours another node's blocking callback,
// so two nodes taking turns on one file each get a few operations done per handoff
// instead of one. The time adapts per glock: a callback that arrives inside the hold time
// means the lock is contended, and the next hold is longer; one that arrives later
// shortens it again. Only inode glocks are held back (as GFS2): rgrp, iopen, statfs and
// rename glocks go when asked.
#pragma once

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "fs/core/glock.h"

namespace lunfs {

class HoldTime {
 public:
  using Clock = std::chrono::steady_clock;
  using ms = std::chrono::milliseconds;
  static constexpr ms kMin{10}, kMax{200}, kLonger{10}, kShorter{5};

  // A blocking callback arrived at `now` for `name`, granted to this node at `granted`:
  // the time its demote may start (at once: `now`).
  Clock::time_point demote_at(const GlockName& name, Clock::time_point granted, Clock::time_point now) {
    if (name.type != GlockType::kInode) return now;
    const ms current = hold(name);
    const Clock::time_point release = granted + current;
    if (now < release) {
      set(name, std::min(current + kLonger, kMax));
      return release;
    }
    set(name, std::max(current - kShorter, kMin));
    return now;
  }
  ms hold(const GlockName& name) const {
    auto it = holds_.find(name);
    return it == holds_.end() ? kMin : it->second;
  }

 private:
  void set(const GlockName& name, ms value) {
    if (value == kMin) {
      holds_.erase(name);  // only contended glocks take room
    } else {
      holds_[name] = value;
    }
  }
  std::unordered_map<GlockName, ms, GlockNameHash> holds_;
};

}  // namespace lunfs

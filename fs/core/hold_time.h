// The minimum hold time against ping-pong (GFS2's gl_hold_time): a node that is using an
// inode glock (local holders) when another node's blocking callback arrives keeps it
// until its hold time after the grant has passed, so two nodes working on one file each
// get a burst of operations done per handoff instead of one. The time adapts per glock: a
// callback that finds the lock in use inside the hold time means it is contended, and the
// next hold is longer; one that finds it idle, or arrives later, shortens it again (an
// idle lock goes at once: strict alternation is not slowed). GlockTable::demote applies
// it to inode glocks only (as GFS2): rgrp, iopen, statfs and rename glocks go when asked.
// Keyed by inode number.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <unordered_map>


namespace lunfs {

class HoldTime {
 public:
  using Clock = std::chrono::steady_clock;
  using ms = std::chrono::milliseconds;
  static constexpr ms kMin{10}, kMax{200}, kLonger{10}, kShorter{5};

  // A blocking callback arrived at `now` for `name`, granted to this node at `granted`,
  // and found it `in_use` here: the time its demote may start (at once: `now`).
  Clock::time_point demote_at(uint64_t name, Clock::time_point granted, Clock::time_point now,
                              bool in_use = true) {
    const ms current = hold(name);
    const Clock::time_point release = granted + current;
    if (in_use && now < release) {
      set(name, std::min(current + kLonger, kMax));
      return release;
    }
    set(name, std::max(current - kShorter, kMin));
    return now;
  }
  ms hold(uint64_t name) const {
    auto it = holds_.find(name);
    return it == holds_.end() ? kMin : it->second;
  }

 private:
  void set(uint64_t name, ms value) {
    if (value == kMin) {
      holds_.erase(name);  // only contended glocks take room
    } else {
      holds_[name] = value;
    }
  }
  std::unordered_map<uint64_t, ms> holds_;
};

}  // namespace lunfs

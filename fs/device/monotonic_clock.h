// Monotonic time behind an interface, so that tests drive it deterministically: the disk
// heartbeat and the disk lease judge time only by it (never by the wall clock, which an
// admin or NTP may step).
#pragma once

#include <chrono>

namespace lunfs {

class MonotonicClock {
 public:
  virtual ~MonotonicClock() = default;
  virtual std::chrono::nanoseconds now() = 0;
  virtual void sleep_for(std::chrono::nanoseconds d) = 0;
};

// std::chrono::steady_clock (CLOCK_MONOTONIC).
MonotonicClock& steady_monotonic_clock();

}  // namespace lunfs

// steady_monotonic_clock(); see monotonic_clock.h.
#include "fs/device/monotonic_clock.h"

#include <thread>

namespace lunfs {

namespace {

class SteadyClock final : public MonotonicClock {
 public:
  std::chrono::nanoseconds now() override { return std::chrono::steady_clock::now().time_since_epoch(); }
  void sleep_for(std::chrono::nanoseconds d) override { std::this_thread::sleep_for(d); }
};

}  // namespace

MonotonicClock& steady_monotonic_clock() {
  static SteadyClock clock;
  return clock;
}

}  // namespace lunfs

// The minimum hold time (fs/core/hold_time.h), on made-up times: a callback inside the hold
// waits for its end and makes the next hold longer, up to the maximum; later callbacks
// go at once and shorten it back to the minimum, as does a callback that finds the lock idle.
#include "fs/core/hold_time.h"

#include <gtest/gtest.h>

namespace lunfs {
namespace {

using Clock = HoldTime::Clock;
using ms = HoldTime::ms;
constexpr uint64_t kFile = 4242;

TEST(HoldTime, ACallbackRightAfterTheGrantWaitsForTheHoldTime) {
  HoldTime h;
  const Clock::time_point granted{};
  EXPECT_EQ(h.demote_at(kFile, granted, granted + ms(3)), granted + HoldTime::kMin);
}

TEST(HoldTime, PingPongLengthensTheHoldUpToTheMaximum) {
  HoldTime h;
  Clock::time_point t{};
  ms last = h.hold(kFile);
  for (int round = 0; round < 40; ++round) {
    // Granted at t, asked back 1 ms later: contended.
    const Clock::time_point at = h.demote_at(kFile, t, t + ms(1));
    EXPECT_EQ(at, t + last) << "round " << round;
    EXPECT_GE(h.hold(kFile), last);
    last = h.hold(kFile);
    t = at + ms(1);
  }
  EXPECT_EQ(h.hold(kFile), HoldTime::kMax);
}

TEST(HoldTime, QuietPeriodsShortenItBack) {
  HoldTime h;
  Clock::time_point t{};
  for (int i = 0; i < 5; ++i) (void)h.demote_at(kFile, t, t + ms(1));
  const ms contended = h.hold(kFile);
  ASSERT_GT(contended, HoldTime::kMin);
  // Asked back long after the grant: at once, and the hold shrinks.
  const Clock::time_point late = t + ms(10000);
  EXPECT_EQ(h.demote_at(kFile, t, late), late);
  EXPECT_LT(h.hold(kFile), contended);
  for (int i = 0; i < 100; ++i) (void)h.demote_at(kFile, t, late);
  EXPECT_EQ(h.hold(kFile), HoldTime::kMin);
}

TEST(HoldTime, AnIdleLockGoesAtOnceAndShortensTheHold) {
  HoldTime h;
  Clock::time_point t{};
  for (int i = 0; i < 5; ++i) (void)h.demote_at(kFile, t, t + ms(1));
  const ms contended = h.hold(kFile);
  EXPECT_EQ(h.demote_at(kFile, t, t + ms(1), /*in_use=*/false), t + ms(1));
  EXPECT_LT(h.hold(kFile), contended);
}

}  // namespace
}  // namespace lunfs

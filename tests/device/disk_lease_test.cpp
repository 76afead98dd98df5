// DiskLease (issue 13, disk_lease.h): the edges of the lease arithmetic on a clock the test
// moves — a renewal that completes late, one that starts after the lease ran out, a LUN
// that stalls for longer than the lease, the clock jumping past it at once (a stopped or
// paused host) — and FencedDevice holding writes back while the lease is out.
#include "fs/device/disk_lease.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <future>
#include <mutex>
#include <vector>

#include "fs/device/aligned_buffer.h"
#include "fs/device/block_device.h"
#include "fs/device/fenced_device.h"
#include "tests/support/temp_file.h"

namespace lunfs {
namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

// Moved by the test only; read by blocked writers on other threads.
class SteppedClock final : public MonotonicClock {
 public:
  nanoseconds now() override { return nanoseconds(now_.load()); }
  void sleep_for(nanoseconds d) override { now_ += d.count(); }
  void set(nanoseconds t) { now_ = t.count(); }

 private:
  std::atomic<int64_t> now_{0};
};

constexpr nanoseconds kLease = 2s, kWaitLimit = 30s;

class DiskLeaseTest : public ::testing::Test {
 protected:
  SteppedClock clock_;
  std::mutex log_mu_;
  std::vector<std::string> log_;
  DiskLease lease_{clock_, kLease, kWaitLimit, 0s, [this](const std::string& m) {
                     std::lock_guard lock(log_mu_);
                     log_.push_back(m);
                   }};

  std::string log() {
    std::lock_guard lock(log_mu_);
    std::string all;
    for (const auto& m : log_) all += m + "\n";
    return all;
  }
  // A writer that waits for the lease in another thread.
  std::future<Status> writer() { return std::async(std::launch::async, [this] { return lease_.await(); }); }
  static bool still_waiting(std::future<Status>& f) { return f.wait_for(100ms) == std::future_status::timeout; }
};

TEST_F(DiskLeaseTest, HoldsUntilTheLastRenewalsStartPlusTheLease) {
  clock_.set(1900ms);
  EXPECT_TRUE(lease_.await());
  ASSERT_TRUE(lease_.renewed(1000ms));
  EXPECT_EQ(lease_.deadline(), 3000ms);
  clock_.set(2999ms);
  EXPECT_TRUE(lease_.await());
  // A renewal that started earlier than the one already counted changes nothing.
  ASSERT_TRUE(lease_.renewed(500ms));
  EXPECT_EQ(lease_.deadline(), 3000ms);
  EXPECT_EQ(log(), "");
}

TEST_F(DiskLeaseTest, ARenewalThatCompletesLateCountsFromItsStart) {
  // Started 0.1 s before the deadline, completed 0.5 s after it: the lease holds until its
  // start plus the lease, and a writer that arrived meanwhile goes on.
  clock_.set(2100ms);
  auto w = writer();
  ASSERT_TRUE(still_waiting(w)) << "the lease ran out at 2 s";
  clock_.set(2500ms);
  ASSERT_TRUE(lease_.renewed(1900ms));
  EXPECT_TRUE(w.get());
  EXPECT_EQ(lease_.deadline(), 3900ms);
}

TEST_F(DiskLeaseTest, ARenewalStartedAfterTheLeaseRanOutNeedsTheMembershipCheck) {
  clock_.set(2100ms);
  auto w = writer();
  EXPECT_FALSE(lease_.renewed(2050ms)) << "the others may have taken this node as dead since 2 s";
  ASSERT_TRUE(still_waiting(w));
  EXPECT_NE(log().find("DISK LEASE RAN OUT"), std::string::npos) << log();
  clock_.set(2200ms);
  lease_.restore(2050ms);  // found a member of the lock space after that renewal
  EXPECT_TRUE(w.get());
  EXPECT_EQ(lease_.deadline(), 4050ms);
  EXPECT_NE(log().find("disk lease back after it had run out for 0.2 s"), std::string::npos) << log();
}

TEST_F(DiskLeaseTest, ALunThatStallsLongerThanTheLeaseHoldsWritesThenFailsThem) {
  clock_.set(2000ms);  // no renewal since the one that started at 0
  auto w = writer();
  ASSERT_TRUE(still_waiting(w));
  clock_.set(2000ms + kWaitLimit - 1ms);
  ASSERT_TRUE(still_waiting(w));
  clock_.set(2000ms + kWaitLimit);
  Status st = w.get();
  EXPECT_EQ(st.err(), EIO);
  EXPECT_NE(st.message().find("disk lease ran out"), std::string::npos) << st.to_string();
}

TEST_F(DiskLeaseTest, TheClockJumpingPastTheLeaseAtOnceIsALeaseRunOut) {
  // A host stopped or paused for 10 s: on waking, no write may go out before a renewal
  // and the membership check, whatever it was about to do.
  clock_.set(10s);
  auto w = writer();
  ASSERT_TRUE(still_waiting(w));
  EXPECT_FALSE(lease_.renewed(10s));
  clock_.set(10s + kWaitLimit);
  EXPECT_EQ(w.get().err(), EIO);
}

TEST_F(DiskLeaseTest, FencedDeviceHoldsWritesWhileTheLeaseIsOutAndLetsReadsGo) {
  testing::TempFile file(1 << 20);
  auto dev = FileBlockDevice::open(file.path());
  ASSERT_TRUE(dev) << dev.status().to_string();
  FencedDevice fenced(**dev);
  fenced.set_lease(&lease_);
  AlignedBuffer a(4096), in(4096);
  std::memset(a.data(), 'a', a.size());
  ASSERT_TRUE(fenced.write(0, a.span()));

  clock_.set(3s);
  auto w = std::async(std::launch::async, [&] { return fenced.write(4096, a.span()); });
  ASSERT_TRUE(still_waiting(w));
  ASSERT_TRUE(fenced.read(0, in.span())) << "reads need no lease";
  EXPECT_EQ(std::memcmp(in.data(), a.data(), 4096), 0);
  lease_.restore(2500ms);
  EXPECT_TRUE(w.get());

  // Fenced while a write waited for the lease: the lease coming back does not let it out.
  clock_.set(5s);
  auto late = std::async(std::launch::async, [&] { return fenced.flush(); });
  ASSERT_TRUE(still_waiting(late));
  fenced.fence("the lock space failed");
  lease_.restore(4900ms);
  Status st = late.get();
  EXPECT_EQ(st.err(), EIO);
  EXPECT_NE(st.message().find("fenced"), std::string::npos) << st.to_string();
}

}  // namespace
}  // namespace lunfs

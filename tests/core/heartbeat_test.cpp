// The disk heartbeat (fs/core/heartbeat.h) on a memory device, with a fake monotonic clock
// that the tests advance: a fresh or cleanly released slot needs no wait, a renewed one is
// refused, a stale one is waited out for its lease plus the margin, a damaged block is
// refused unless watched, a renewal counts only once flushed, and failures are reported.
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fs/core/heartbeat.h"
#include "fs/device/aligned_buffer.h"
#include "fs/device/testing/fault_device.h"
#include "mkfs/formatter.h"

namespace lunfs {
namespace {

using namespace std::chrono_literals;
using State = SlotLiveness::State;

class FakeClock final : public MonotonicClock {
 public:
  std::chrono::nanoseconds now() override { return now_; }
  void sleep_for(std::chrono::nanoseconds d) override {
    now_ += d;
    ++sleeps;
    if (on_sleep) on_sleep();
  }
  void advance(std::chrono::nanoseconds d) { now_ += d; }

  std::function<void()> on_sleep;  // what other hosts do while the watcher waits
  int sleeps = 0;

 private:
  std::chrono::nanoseconds now_{1'000'000'000'000};
};

class HeartbeatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mem_ = make_memory_device(uint64_t{96} << 20);
    dev_ = std::make_unique<FaultInjectingDevice>(*mem_);
    MkfsOptions o;
    o.cluster_name = "test";
    o.fs_name = "fs";
    o.journals = 3;
    o.journal_mib = 8;
    o.rgrp_mib = 32;
    auto sb = plan_filesystem(*dev_, o);
    ASSERT_TRUE(sb) << sb.status().to_string();
    ASSERT_TRUE(write_filesystem(*dev_, *sb));
    sb_ = *sb;
  }

  std::unique_ptr<SlotHeartbeat> claim(uint32_t slot, const std::string& host, std::chrono::milliseconds interval,
                                       MonotonicClock& clock) {
    HeartbeatIdentity id{0, std::hash<std::string>{}(host) | 1, host};
    auto hb = SlotHeartbeat::claim(*dev_, sb_, slot, id, interval, clock, [this](const std::string& m) { log_.push_back(m); });
    EXPECT_TRUE(hb) << hb.status().to_string();
    return hb ? std::move(*hb) : nullptr;
  }

  std::vector<SlotLiveness> watch(std::vector<uint32_t> slots, FakeClock& clock, HeartbeatWatchOptions o = {}) {
    o.interval = 1000ms;
    auto r = watch_heartbeats(*dev_, sb_, slots, clock, o);
    EXPECT_TRUE(r) << r.status().to_string();
    return r ? *r : std::vector<SlotLiveness>{};
  }

  ondisk::Heartbeat on_disk(uint32_t slot) {
    AlignedBuffer b(sb_.geometry.block_size);
    EXPECT_TRUE(dev_->read(block_offset(slot), b.span()));
    auto r = ondisk::decode_heartbeat(b.span(), sb_.geometry.heartbeat(slot), sb_.csum_seed, sb_.geometry);
    EXPECT_TRUE(r) << r.status().to_string();
    return r ? *r : ondisk::Heartbeat{};
  }

  uint64_t block_offset(uint32_t slot) const { return sb_.geometry.heartbeat(slot) * sb_.geometry.block_size; }

  std::string log_text() const {
    std::string s;
    for (const auto& m : log_) s += m + "\n";
    return s;
  }

  std::unique_ptr<BlockDevice> mem_;
  std::unique_ptr<FaultInjectingDevice> dev_;
  ondisk::Superblock sb_;
  std::vector<std::string> log_;
};

TEST_F(HeartbeatTest, FreshFileSystemIsCleanWithoutWaiting) {
  FakeClock clock;
  auto r = watch({0, 1, 2}, clock);
  ASSERT_EQ(r.size(), 3u);
  for (const auto& s : r) EXPECT_EQ(s.state, State::kClean) << "slot " << s.slot;
  EXPECT_EQ(clock.sleeps, 0);
}

TEST_F(HeartbeatTest, ClaimIsDurableAndNamesItsWriter) {
  FakeClock clock;
  auto hb = claim(1, "host-a", 2000ms, clock);
  ASSERT_TRUE(hb);
  ASSERT_TRUE(dev_->crash());  // power loss: only flushed writes stay
  auto rec = on_disk(1);
  EXPECT_EQ(rec.state, ondisk::HeartbeatState::kLive);
  EXPECT_EQ(rec.host, "host-a");
  EXPECT_EQ(rec.interval_ms, 2000u);
  EXPECT_EQ(rec.lease_ms, 4000u);
  EXPECT_EQ(rec.pid, static_cast<uint32_t>(getpid()));
  EXPECT_EQ(rec.mount_generation, 1u);
  EXPECT_NE(describe_heartbeat_holder(rec).find("host host-a"), std::string::npos);
}

TEST_F(HeartbeatTest, HeartbeatRenewedDuringTheWatchIsLive) {
  FakeClock holder_clock, clock;
  auto holder = claim(0, "host-a", 1000ms, holder_clock);
  ASSERT_TRUE(holder);
  clock.on_sleep = [&] { ASSERT_TRUE(holder->renew()); };
  auto r = watch({0, 1, 2}, clock);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].state, State::kLive);
  EXPECT_TRUE(r[0].renewed);
  EXPECT_EQ(r[0].record.host, "host-a");
  EXPECT_EQ(clock.sleeps, 1) << "a renewal seen at the first poll ends the watch";
  EXPECT_EQ(r[1].state, State::kClean);
}

// The writer's lease decides the wait, not the watcher's own interval: 2 × 3 s + 1 s.
TEST_F(HeartbeatTest, StaleHeartbeatIsWaitedOutForTheWritersLeasePlusTheMargin) {
  FakeClock holder_clock, clock;
  auto holder = claim(2, "host-a", 3000ms, holder_clock);
  ASSERT_TRUE(holder);
  holder.reset();  // the host crashed: no renewal, no release
  const auto start = clock.now();
  std::chrono::milliseconds announced{0};
  HeartbeatWatchOptions o;
  o.on_watch = [&](std::chrono::milliseconds window) { announced = window; };
  auto r = watch({0, 1, 2}, clock, o);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[2].state, State::kStale);
  EXPECT_EQ(clock.now() - start, 7000ms);
  EXPECT_EQ(announced, 7000ms);
  EXPECT_EQ(r[2].unchanged_for, 7000ms);
  EXPECT_EQ(clock.sleeps, 7) << "polls every half interval, at most a second apart";
}

TEST_F(HeartbeatTest, CleanReleaseNeedsNoWait) {
  FakeClock holder_clock, clock;
  auto holder = claim(0, "host-a", 1000ms, holder_clock);
  ASSERT_TRUE(holder);
  ASSERT_TRUE(holder->renew());
  ASSERT_TRUE(holder->release());
  auto r = watch({0}, clock);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].state, State::kClean);
  EXPECT_EQ(clock.sleeps, 0);
  EXPECT_EQ(on_disk(0).counter, 3u) << "claim, renewal and release each wrote one record";
}

TEST_F(HeartbeatTest, ReleaseDuringTheWatchIsClean) {
  FakeClock holder_clock, clock;
  auto holder = claim(0, "host-a", 1000ms, holder_clock);
  ASSERT_TRUE(holder);
  clock.on_sleep = [&] {
    if (clock.sleeps == 2) {
      ASSERT_TRUE(holder->release());
    }
  };
  auto r = watch({0}, clock);
  EXPECT_EQ(r[0].state, State::kClean);
}

// A renewal counts once its flush returned: a failed flush leaves the previous renewal as
// the durable one, and failures are reported, loudly once the lease has run out.
TEST_F(HeartbeatTest, FailedRenewalsAreReportedAndDoNotCount) {
  FakeClock clock;
  auto hb = claim(0, "host-a", 1000ms, clock);
  ASSERT_TRUE(hb);
  const uint64_t durable = on_disk(0).counter;

  dev_->fail_nth(IoKind::kFlush, 1);
  clock.advance(1000ms);
  hb->tick();
  EXPECT_EQ(hb->counter(), durable) << "a renewal whose flush failed counted";
  EXPECT_EQ(hb->consecutive_failures(), 1u);
  ASSERT_EQ(log_.size(), 1u) << log_text();
  EXPECT_NE(log_[0].find("slot 0: heartbeat renewal failed"), std::string::npos) << log_text();
  EXPECT_EQ(log_text().find("HEARTBEAT LOST"), std::string::npos) << "within the lease: " << log_text();
  // A power loss now keeps only the last renewal that counted (the claim).
  ASSERT_TRUE(dev_->crash());
  EXPECT_EQ(on_disk(0).counter, durable);

  dev_->fail_range(IoKind::kWrite, block_offset(0), sb_.geometry.block_size);
  for (int i = 0; i < 3; ++i) {
    clock.advance(1000ms);
    hb->tick();
  }
  EXPECT_EQ(hb->consecutive_failures(), 4u);
  const std::string failing = log_text();
  size_t lost = failing.find("HEARTBEAT LOST: slot 0 has not been renewed for");
  EXPECT_NE(lost, std::string::npos) << failing;
  EXPECT_EQ(failing.find("HEARTBEAT LOST", lost + 1), std::string::npos) << "reported loudly once: " << failing;

  dev_->clear_faults();
  clock.advance(1000ms);
  hb->tick();
  EXPECT_EQ(hb->consecutive_failures(), 0u);
  EXPECT_NE(log_.back().find("renewed again after 4 failed renewal(s)"), std::string::npos) << log_text();
  EXPECT_GT(on_disk(0).counter, durable);
}

// Another mount took the slot over (it judged this one stale): renewal and release refuse
// to write over it, and say who it is.
TEST_F(HeartbeatTest, SlotTakenOverIsReportedAndNotOverwritten) {
  FakeClock clock;
  auto a = claim(0, "host-a", 1000ms, clock);
  auto b = claim(0, "host-b", 1000ms, clock);
  ASSERT_TRUE(a && b);
  Status st = a->renew();
  EXPECT_EQ(st.err(), EBUSY);
  EXPECT_NE(st.message().find("rewritten by host host-b"), std::string::npos) << st.message();
  EXPECT_EQ(a->release().err(), EBUSY);
  EXPECT_EQ(on_disk(0).host, "host-b");
  EXPECT_EQ(on_disk(0).state, ondisk::HeartbeatState::kLive);
  EXPECT_EQ(on_disk(0).mount_generation, 2u);
}

// A block that does not verify cannot tell whether someone renews it: refused at once,
// unless the caller asks to watch its bytes (mount -o heartbeat_force, fsck).
TEST_F(HeartbeatTest, DamagedBlockIsRefusedUnlessWatched) {
  AlignedBuffer b(sb_.geometry.block_size);
  ASSERT_TRUE(dev_->read(block_offset(1), b.span()));
  b.data()[40] ^= std::byte{0x01};
  ASSERT_TRUE(dev_->write(block_offset(1), b.span()));

  FakeClock clock;
  auto r = watch({0, 1}, clock);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].state, State::kDamaged);
  EXPECT_NE(r[1].damage.find("checksum"), std::string::npos) << r[1].damage;
  EXPECT_EQ(clock.sleeps, 0);

  HeartbeatWatchOptions forced;
  forced.watch_damaged = true;
  const auto start = clock.now();
  r = watch({0, 1}, clock, forced);
  EXPECT_EQ(r[1].state, State::kStale);
  EXPECT_EQ(clock.now() - start, 3000ms) << "the watcher's own lease (2 × 1 s) plus the margin";

  FakeClock other, watcher;
  watcher.on_sleep = [&] {
    if (watcher.sleeps == 3) claim(1, "host-c", 1000ms, other);
  };
  r = watch({0, 1}, watcher, forced);
  EXPECT_EQ(r[1].state, State::kLive);
  EXPECT_EQ(r[1].record.host, "host-c");
}

TEST_F(HeartbeatTest, MarkCleanOnlyWhatWasSeen) {
  FakeClock clock;
  auto holder = claim(1, "host-a", 1000ms, clock);
  ASSERT_TRUE(holder);
  holder.reset();
  auto r = watch({1}, clock);
  ASSERT_EQ(r[0].state, State::kStale);
  auto seen = r[0];
  FakeClock other;
  auto newcomer = claim(1, "host-b", 1000ms, other);
  EXPECT_EQ(mark_heartbeat_clean(*dev_, sb_, seen).err(), EBUSY) << "the slot was taken meanwhile";
  EXPECT_EQ(on_disk(1).host, "host-b");
  newcomer.reset();
  r = watch({1}, clock);
  ASSERT_EQ(r[0].state, State::kStale);
  ASSERT_TRUE(mark_heartbeat_clean(*dev_, sb_, r[0]));
  EXPECT_EQ(watch({1}, clock)[0].state, State::kClean);
}

// The renewal thread, on the real clock with a short interval.
TEST_F(HeartbeatTest, ThreadRenewsUntilStopped) {
  auto hb = claim(0, "host-a", 20ms, steady_monotonic_clock());
  ASSERT_TRUE(hb);
  const uint64_t first = hb->counter();
  hb->start();
  std::this_thread::sleep_for(300ms);
  hb->stop();
  const uint64_t stopped = hb->counter();
  EXPECT_GE(stopped, first + 3);
  std::this_thread::sleep_for(60ms);
  EXPECT_EQ(hb->counter(), stopped) << "renewed after stop()";
  EXPECT_EQ(on_disk(0).counter, stopped);
  EXPECT_EQ(hb->consecutive_failures(), 0u) << log_text();
}

}  // namespace
}  // namespace lunfs

namespace lunfs {
namespace {

// The survivors' observer (node recovery): a slot is stale once its bytes have been seen
// unchanged for the writer's lease plus the margin, counted from this observer's first
// sight of them — not before, however old the renewal really is — and a renewal or a
// damaged block restarts or follows the same count.
TEST_F(HeartbeatTest, ObserverCallsASlotStaleFromItsFirstSightOfTheLastRenewal) {
  FakeClock holder_clock, clock;
  auto holder = claim(1, "host-a", 1000ms, holder_clock);
  ASSERT_TRUE(holder);
  HeartbeatObserver observer(*dev_, sb_, clock, 1000ms);
  EXPECT_EQ(observer.liveness(1).state, State::kLive) << "not yet polled: assumed live";
  ASSERT_TRUE(observer.poll());
  EXPECT_EQ(observer.liveness(0).state, State::kClean);
  EXPECT_EQ(observer.liveness(1).state, State::kLive);
  EXPECT_EQ(observer.poll_interval(), 500ms);

  // Renewed at 2.5 s: the count starts again from the poll that sees it.
  for (int i = 0; i < 5; ++i) {
    clock.advance(500ms);
    ASSERT_TRUE(observer.poll());
  }
  ASSERT_TRUE(holder->renew());
  clock.advance(500ms);
  ASSERT_TRUE(observer.poll());
  const auto renewal_seen = clock.now();
  holder.reset();  // the host dies: no renewal, no release
  while (observer.liveness(1).state == State::kLive) {
    ASSERT_LT(clock.now() - renewal_seen, 10s) << "never called stale";
    clock.advance(500ms);
    ASSERT_TRUE(observer.poll());
  }
  const SlotLiveness stale = observer.liveness(1);
  EXPECT_EQ(stale.state, State::kStale);
  EXPECT_EQ(clock.now() - renewal_seen, 3000ms) << "the writer's lease (2 × 1 s) plus the margin";
  EXPECT_EQ(stale.record.host, "host-a");
  ASSERT_TRUE(mark_heartbeat_clean(*dev_, sb_, stale));
  ASSERT_TRUE(observer.poll());
  EXPECT_EQ(observer.liveness(1).state, State::kClean);

  // A damaged block is watched like a live one.
  AlignedBuffer b(sb_.geometry.block_size);
  ASSERT_TRUE(dev_->read(block_offset(2), b.span()));
  b.data()[40] ^= std::byte{0x01};
  ASSERT_TRUE(dev_->write(block_offset(2), b.span()));
  ASSERT_TRUE(observer.poll());
  EXPECT_EQ(observer.liveness(2).state, State::kLive);
  clock.advance(3000ms);
  ASSERT_TRUE(observer.poll());
  EXPECT_EQ(observer.liveness(2).state, State::kStale);
  EXPECT_FALSE(observer.liveness(2).damage.empty());
}

}  // namespace
}  // namespace lunfs

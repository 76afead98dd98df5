// HeldWriteDevice; see held_write_device.h.
#include "tests/crash/held_write_device.h"

namespace lunfs::crash {

void HeldWriteDevice::arm() {
  std::lock_guard lock(mu_);
  armed_ = true;
  armed_by_ = std::this_thread::get_id();
  held_ = finished_ = false;
}

bool HeldWriteDevice::wait_until_held() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return held_ || finished_; });
  return held_;
}

void HeldWriteDevice::release() {
  std::lock_guard lock(mu_);
  armed_ = false;
  cv_.notify_all();
}

void HeldWriteDevice::finished() {
  std::lock_guard lock(mu_);
  finished_ = true;
  cv_.notify_all();
}

bool HeldWriteDevice::timed_out() const {
  std::lock_guard lock(mu_);
  return timed_out_;
}

Status HeldWriteDevice::write(uint64_t offset, std::span<const std::byte> buf) {
  {
    std::unique_lock lock(mu_);
    if (armed_ && !held_ && std::this_thread::get_id() != armed_by_) {
      held_ = true;
      cv_.notify_all();
      if (!cv_.wait_for(lock, kHoldLimit, [&] { return !armed_; })) timed_out_ = true;
    }
  }
  return inner_.write(offset, buf);
}

}  // namespace lunfs::crash

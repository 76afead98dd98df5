// RecordingDevice: write/flush log for crash simulation.
#include "fs/device/testing/recording_device.h"

namespace lunfs {

Status RecordingDevice::write(uint64_t offset, std::span<const std::byte> buf) {
  std::lock_guard lock(mu_);
  // Recorded only when the write succeeded: a failed write never reaches any disk.
  LUNFS_TRY(inner_.write(offset, buf));
  log_.push_back({DeviceOp::Kind::kWrite, offset, std::vector<std::byte>(buf.begin(), buf.end()), 0});
  return Status::ok();
}

Status RecordingDevice::flush() {
  std::lock_guard lock(mu_);
  LUNFS_TRY(inner_.flush());
  log_.push_back({DeviceOp::Kind::kFlush, 0, {}, 0});
  return Status::ok();
}

void RecordingDevice::mark(uint64_t value) {
  std::lock_guard lock(mu_);
  log_.push_back({DeviceOp::Kind::kMark, 0, {}, value});
}

std::vector<DeviceOp> RecordingDevice::log() const {
  std::lock_guard lock(mu_);
  return log_;
}

}  // namespace lunfs

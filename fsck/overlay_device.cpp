// OverlayDevice: the overlay is kept in units of at least 4 KiB (one journal image is one
// block, and blocks are at least 4 KiB), so a replayed image costs one map entry. A write
// that covers a unit partly fills the rest from the device first.
#include "fsck/overlay_device.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include "fs/device/aligned_buffer.h"

namespace lunfs {

namespace {
uint32_t unit_for(uint32_t alignment) {
  constexpr uint32_t kMinUnit = 4096;
  return alignment >= kMinUnit ? alignment : kMinUnit / alignment * alignment;
}
}  // namespace

OverlayDevice::OverlayDevice(BlockDevice& base) : base_(base), unit_(unit_for(base.io_alignment())) {}

Status OverlayDevice::read(uint64_t offset, std::span<std::byte> buf) {
  LUNFS_TRY(base_.read(offset, buf));
  std::shared_lock lock(mu_);
  const uint64_t end = offset + buf.size();
  for (auto it = units_.lower_bound(offset / unit_); it != units_.end() && it->first * unit_ < end; ++it) {
    const uint64_t lo = std::max(offset, it->first * unit_);
    const uint64_t hi = std::min(end, (it->first + 1) * unit_);
    std::memcpy(buf.data() + (lo - offset), it->second.get() + (lo - it->first * unit_), hi - lo);
  }
  return Status::ok();
}

Status OverlayDevice::write(uint64_t offset, std::span<const std::byte> buf) {
  const uint32_t align = base_.io_alignment();
  if (offset % align != 0 || buf.size() % align != 0) {
    return error(EINVAL, "overlay write at byte " + std::to_string(offset) + " of " +
                             std::to_string(buf.size()) + " bytes is not aligned to " + std::to_string(align));
  }
  if (offset > size_bytes() || buf.size() > size_bytes() - offset) {
    return error(ENOSPC, "overlay write at byte " + std::to_string(offset) + " beyond the end of the device");
  }
  std::unique_lock lock(mu_);
  const uint64_t end = offset + buf.size();
  for (uint64_t u = offset / unit_; u * unit_ < end; ++u) {
    const uint64_t unit_start = u * unit_;
    const uint64_t lo = std::max(offset, unit_start);
    const uint64_t hi = std::min(end, unit_start + unit_);
    auto it = units_.find(u);
    if (it == units_.end()) {
      auto data = std::make_unique<std::byte[]>(unit_);
      if (hi - lo < unit_) {  // partly covered: the rest comes from the device
        const uint64_t len = std::min<uint64_t>(unit_, size_bytes() - unit_start);
        AlignedBuffer fill(len);
        LUNFS_TRY(base_.read(unit_start, fill.span()));
        std::memcpy(data.get(), fill.data(), len);
      }
      it = units_.emplace(u, std::move(data)).first;
    }
    std::memcpy(it->second.get() + (lo - unit_start), buf.data() + (lo - offset), hi - lo);
  }
  return Status::ok();
}

uint64_t OverlayDevice::overlay_bytes() const {
  std::shared_lock lock(mu_);
  return uint64_t{units_.size()} * unit_;
}

}  // namespace lunfs

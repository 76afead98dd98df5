// CrashImage: layered, sector-granular view of a disk after a simulated crash.
#include "tests/crash/crash_image.h"

#include <cstring>

namespace lunfs::crash {

void SectorLayer::put(uint64_t offset, std::span<const std::byte> data) {
  for (size_t pos = 0; pos + kSector <= data.size(); pos += kSector) {
    std::memcpy(sectors_[(offset + pos) / kSector].data(), data.data() + pos, kSector);
  }
}

void SectorLayer::overlay(uint64_t offset, std::span<std::byte> buf) const {
  if (sectors_.empty()) return;
  const uint64_t first = offset / kSector, count = buf.size() / kSector;
  if (sectors_.size() < count) {
    // A large read (fsck sweeps whole journals) over a small layer: walk the layer.
    for (const auto& [sector, data] : sectors_) {
      if (sector >= first && sector < first + count) std::memcpy(buf.data() + (sector - first) * kSector, data.data(), kSector);
    }
    return;
  }
  for (size_t pos = 0; pos + kSector <= buf.size(); pos += kSector) {
    auto it = sectors_.find((offset + pos) / kSector);
    if (it != sectors_.end()) std::memcpy(buf.data() + pos, it->second.data(), kSector);
  }
}

Status CrashImage::read(uint64_t offset, std::span<std::byte> buf) {
  if (offset % SectorLayer::kSector || buf.size() % SectorLayer::kSector) {
    return error(EINVAL, "unaligned crash-image read");
  }
  if (offset > durable_.size() || buf.size() > durable_.size() - offset) {
    return error(EIO, "crash-image read beyond the end");
  }
  std::memcpy(buf.data(), durable_.data() + offset, buf.size());
  in_flight_.overlay(offset, buf);
  recovery_.overlay(offset, buf);
  return Status::ok();
}

Status CrashImage::write(uint64_t offset, std::span<const std::byte> buf) {
  if (offset % SectorLayer::kSector || buf.size() % SectorLayer::kSector) {
    return error(EINVAL, "unaligned crash-image write");
  }
  if (offset > durable_.size() || buf.size() > durable_.size() - offset) {
    return error(ENOSPC, "crash-image write beyond the end");
  }
  recovery_.put(offset, buf);
  return Status::ok();
}

}  // namespace lunfs::crash

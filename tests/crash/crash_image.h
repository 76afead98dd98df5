// The disk as it is after a simulated power loss: a flat image of everything made durable
// by the last completed flush, the writes of the interrupted flush epoch that happened to
// reach the platter (any subset, the last one possibly torn, at sector granularity), and on
// top whatever recovery writes afterwards. Cheap to build per crash point: the flat image is
// shared, only the small layers are per point.
#pragma once

#include <array>
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "fs/device/block_device.h"

namespace lunfs::crash {

class SectorLayer {
 public:
  static constexpr uint32_t kSector = 512;
  void put(uint64_t offset, std::span<const std::byte> data);
  // Copies the sectors this layer holds into `buf` (which covers [offset, offset+size)).
  void overlay(uint64_t offset, std::span<std::byte> buf) const;
  bool empty() const { return sectors_.empty(); }

 private:
  std::unordered_map<uint64_t, std::array<std::byte, kSector>> sectors_;
};

class CrashImage final : public BlockDevice {
 public:
  // `durable` must outlive the image.
  CrashImage(const std::vector<std::byte>& durable, SectorLayer in_flight)
      : durable_(durable), in_flight_(std::move(in_flight)) {}

  uint64_t size_bytes() const override { return durable_.size(); }
  uint32_t io_alignment() const override { return SectorLayer::kSector; }
  Status read(uint64_t offset, std::span<std::byte> buf) override;
  Status write(uint64_t offset, std::span<const std::byte> buf) override;
  Status flush() override { return Status::ok(); }
  std::string describe() const override { return "crash image"; }

 private:
  const std::vector<std::byte>& durable_;
  SectorLayer in_flight_;
  SectorLayer recovery_;  // writes made after the crash (replay)
};

}  // namespace lunfs::crash

// A copy-on-write overlay over a BlockDevice, held in memory: writes land in the overlay,
// reads see the overlay over the device, and the device itself is never written. fsck -n
// replays dirty journals into one, so that it checks the file system as it will be after
// replay while leaving every byte of the LUN as it was.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>

#include "fs/device/block_device.h"

namespace lunfs {

class OverlayDevice final : public BlockDevice {
 public:
  explicit OverlayDevice(BlockDevice& base);

  uint64_t size_bytes() const override { return base_.size_bytes(); }
  uint32_t io_alignment() const override { return base_.io_alignment(); }
  Status read(uint64_t offset, std::span<std::byte> buf) override;
  Status write(uint64_t offset, std::span<const std::byte> buf) override;
  // Nothing reaches the device, so there is nothing to make durable.
  Status flush() override { return Status::ok(); }
  std::string describe() const override { return "in-memory overlay over " + base_.describe(); }

  // Bytes held in the overlay (what the replay changed).
  uint64_t overlay_bytes() const;

 private:
  BlockDevice& base_;
  const uint32_t unit_;  // overlay granularity: a multiple of the device's alignment
  mutable std::shared_mutex mu_;
  std::map<uint64_t, std::unique_ptr<std::byte[]>> units_;  // unit index -> contents
};

}  // namespace lunfs

// A BlockDevice that passes every I/O to an inner device and records each write and flush
// in issue order, plus "marks" the caller inserts (for example "transaction 7 was
// acknowledged durable"). The crash checker (tests/crash) replays prefixes and subsets of
// this log to build the disk as it would be after a power loss at any point.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "fs/device/block_device.h"

namespace lunfs {

struct DeviceOp {
  enum class Kind { kWrite, kFlush, kMark };
  Kind kind = Kind::kWrite;
  uint64_t offset = 0;           // kWrite
  std::vector<std::byte> data;   // kWrite
  uint64_t mark = 0;             // kMark
};

class RecordingDevice final : public BlockDevice {
 public:
  // Does not own `inner`.
  explicit RecordingDevice(BlockDevice& inner) : inner_(inner) {}

  uint64_t size_bytes() const override { return inner_.size_bytes(); }
  uint32_t io_alignment() const override { return inner_.io_alignment(); }
  Status read(uint64_t offset, std::span<std::byte> buf) override { return inner_.read(offset, buf); }
  Status write(uint64_t offset, std::span<const std::byte> buf) override;
  Status flush() override;
  std::string describe() const override { return "recording " + inner_.describe(); }

  // Appends a mark. A mark placed after a flush returned says what that flush made durable.
  void mark(uint64_t value);
  // The log so far; the device keeps recording.
  std::vector<DeviceOp> log() const;

 private:
  BlockDevice& inner_;
  mutable std::mutex mu_;
  std::vector<DeviceOp> log_;
};

}  // namespace lunfs

// A BlockDevice that passes every call to another one: the base of the wrappers that
// change only a few calls (the fence, the write log, fault injection in recovery).
#pragma once

#include <memory>
#include <string>

#include "fs/device/block_device.h"
#include "fs/device/io_queue.h"

namespace lunfs {

class ForwardingDevice : public BlockDevice {
 public:
  explicit ForwardingDevice(BlockDevice& inner) : inner_(inner) {}

  uint64_t size_bytes() const override { return inner_.size_bytes(); }
  uint32_t io_alignment() const override { return inner_.io_alignment(); }
  Status read(uint64_t offset, std::span<std::byte> buf) override { return inner_.read(offset, buf); }
  Status write(uint64_t offset, std::span<const std::byte> buf) override { return inner_.write(offset, buf); }
  Status flush() override { return inner_.flush(); }
  std::string describe() const override { return inner_.describe(); }
  std::unique_ptr<IoQueue> make_io_queue() override { return inner_.make_io_queue(); }

 protected:
  BlockDevice& inner_;
};

}  // namespace lunfs

// The device layer: every byte lunfs reads from or writes to the LUN goes through a
// BlockDevice, so that tests can swap in memory devices and fault-injecting wrappers
// (LevelDB's Env idea). Offsets and lengths must be multiples of io_alignment(); memory
// may have any alignment (implementations that need aligned memory bounce internally).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "fs/device/io_queue.h"
#include "fs/result.h"

namespace lunfs {

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;

  virtual uint64_t size_bytes() const = 0;
  // Granularity of offsets and lengths, in bytes (the logical sector size).
  virtual uint32_t io_alignment() const = 0;
  virtual Status read(uint64_t offset, std::span<std::byte> buf) = 0;
  virtual Status write(uint64_t offset, std::span<const std::byte> buf) = 0;
  // Barrier: every write that completed before the call is durable when it returns.
  virtual Status flush() = 0;
  // What this device is, for messages ("/dev/sdb (block device, O_DIRECT)").
  virtual std::string describe() const = 0;
  // A queue for asynchronous data transfers (io_queue.h); synchronous unless overridden.
  virtual std::unique_ptr<IoQueue> make_io_queue();
};

struct FileDeviceOptions {
  bool read_only = false;
  // Use O_DIRECT. When the file system refuses it (tmpfs), the device falls back to
  // buffered I/O with fdatasync on flush and says so in fallback_note().
  bool direct = true;
};

// A block device or a regular file (the LUN in tests).
class FileBlockDevice final : public BlockDevice {
 public:
  static Result<std::unique_ptr<FileBlockDevice>> open(const std::string& path,
                                                       FileDeviceOptions options = {});
  ~FileBlockDevice() override;

  uint64_t size_bytes() const override { return size_; }
  uint32_t io_alignment() const override { return alignment_; }
  Status read(uint64_t offset, std::span<std::byte> buf) override;
  Status write(uint64_t offset, std::span<const std::byte> buf) override;
  Status flush() override;
  std::string describe() const override;
  // Linux native AIO when the device is open with O_DIRECT (buffered AIO would block).
  std::unique_ptr<IoQueue> make_io_queue() override;

  bool is_block_device() const { return is_block_device_; }
  bool direct_io() const { return direct_; }
  // Non-empty when O_DIRECT was asked for but refused.
  const std::string& fallback_note() const { return fallback_note_; }
  int fd() const { return fd_; }

 private:
  FileBlockDevice() = default;
  Status check_range(uint64_t offset, size_t len, const char* op) const;

  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint32_t alignment_ = 512;
  bool is_block_device_ = false;
  bool direct_ = false;
  bool read_only_ = false;
  std::string fallback_note_;
};

// A sparse in-memory device for unit tests; unwritten ranges read as zeros.
std::unique_ptr<BlockDevice> make_memory_device(uint64_t size_bytes, uint32_t alignment = 512);

}  // namespace lunfs

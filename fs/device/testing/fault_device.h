// A fault-injecting BlockDevice for tests. It models a disk with a volatile write cache:
// writes are held back until flush(), so a test can "lose power" and keep any prefix of the
// un-flushed writes, tear the next one at sector granularity, or drop them all. It also
// returns I/O errors at chosen points (the Nth read/write/flush, or any I/O touching a range).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "fs/device/block_device.h"

namespace lunfs {

enum class IoKind { kRead, kWrite, kFlush };

class FaultInjectingDevice final : public BlockDevice {
 public:
  // Does not own `inner`; `inner` must outlive this device.
  explicit FaultInjectingDevice(BlockDevice& inner) : inner_(inner) {}

  uint64_t size_bytes() const override { return inner_.size_bytes(); }
  uint32_t io_alignment() const override { return inner_.io_alignment(); }
  Status read(uint64_t offset, std::span<std::byte> buf) override;
  Status write(uint64_t offset, std::span<const std::byte> buf) override;
  Status flush() override;
  std::string describe() const override { return "fault-injecting " + inner_.describe(); }

  // Power loss: the first `keep_writes` un-flushed writes reach the inner device in order,
  // then the first `torn_sectors` sectors of the next one; everything else is lost.
  // Afterwards the device works again (as after a reboot).
  Status crash(size_t keep_writes = 0, size_t torn_sectors = 0);
  // Power loss where an arbitrary subset of the un-flushed writes reached the disk
  // (write caches reorder): keep[i] says whether pending write i survives.
  Status crash_with_subset(const std::vector<bool>& keep);
  size_t pending_writes() const;

  // The `nth` (1-based) next operation of `kind` fails with `err`; one-shot.
  void fail_nth(IoKind kind, uint64_t nth, int err = EIO);
  // Every operation of `kind` overlapping [offset, offset+length) fails with `err` until
  // clear_faults(). Flushes ignore the range.
  void fail_range(IoKind kind, uint64_t offset, uint64_t length, int err = EIO);
  void clear_faults();

 private:
  struct PendingWrite {
    uint64_t offset;
    std::vector<std::byte> data;
  };
  struct Fault {
    IoKind kind;
    uint64_t countdown;  // 0 = range fault
    uint64_t offset;
    uint64_t length;
    int err;
  };
  Status injected(IoKind kind, uint64_t offset, uint64_t length);
  Status apply(const PendingWrite& w, size_t bytes);

  BlockDevice& inner_;
  mutable std::mutex mu_;
  std::vector<PendingWrite> pending_;
  std::vector<Fault> faults_;
};

}  // namespace lunfs

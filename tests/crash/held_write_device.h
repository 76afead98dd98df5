// A BlockDevice wrapper that lets a single-threaded crash workload put two operations in
// flight at once, deterministically: once armed, it holds the first write that a thread
// other than the arming one issues, until the arming thread releases it. The core moves an
// allocating write's data to the device outside its metadata mutex (between the write's
// two transactions), so holding that transfer while the workload's thread runs another
// operation and its sync reproduces what two concurrent writers do, in one fixed order
// that the recording device captures.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "fs/device/block_device.h"

namespace lunfs::crash {

class HeldWriteDevice final : public BlockDevice {
 public:
  explicit HeldWriteDevice(BlockDevice& inner) : inner_(inner) {}

  // Holds the next write issued by any thread but the caller.
  void arm();
  // Waits until that write is held (true), or the other thread reports with finished()
  // that it ended without writing (false).
  bool wait_until_held();
  // Lets the held write (and every later one) through.
  void release();
  void finished();
  // A held write waited longer than any operation takes: the holding thread must have
  // been inside the metadata mutex that the releasing thread needed (a workload bug, or
  // data written under the mutex where it should not be). The write then went ahead.
  bool timed_out() const;

  uint64_t size_bytes() const override { return inner_.size_bytes(); }
  uint32_t io_alignment() const override { return inner_.io_alignment(); }
  Status read(uint64_t offset, std::span<std::byte> buf) override { return inner_.read(offset, buf); }
  Status write(uint64_t offset, std::span<const std::byte> buf) override;
  Status flush() override { return inner_.flush(); }
  std::string describe() const override { return "held writes over " + inner_.describe(); }

 private:
  static constexpr std::chrono::seconds kHoldLimit{20};

  BlockDevice& inner_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false;
  std::thread::id armed_by_;
  bool held_ = false, finished_ = false, timed_out_ = false;
};

}  // namespace lunfs::crash

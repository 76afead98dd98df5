// A record of every write and flush that reached the LUN, kept to prove after the fact
// when a node last wrote (issue 13: no write of a partitioned node reaches the LUN after
// the others may recover it). `mount.lunfs -o write_log=PATH` puts it under the mount's
// fence, so it sees exactly what got past the fence and the disk lease (the heartbeat
// writes beside it, unrecorded). One text line per completed operation, appended:
//
//   W|F <submitted> <completed> <offset> <bytes> <errno, 0 for success>
//
// times in CLOCK_REALTIME nanoseconds, so that lines of several nodes on one machine, and
// their logs' timestamps, compare (across hosts only as well as their clocks agree: this
// is a test and diagnosis tool). A flush has offset and bytes 0. Each line is one
// write(2) to a file opened O_APPEND: costly, not for production.
#pragma once

#include <memory>
#include <string>

#include "fs/device/forwarding_device.h"

namespace lunfs {

class WriteLogDevice final : public ForwardingDevice {
 public:
  static Result<std::unique_ptr<WriteLogDevice>> open(BlockDevice& inner, const std::string& path);
  ~WriteLogDevice() override;

  Status write(uint64_t offset, std::span<const std::byte> buf) override;
  Status flush() override;
  std::unique_ptr<IoQueue> make_io_queue() override;

  // Appends one line (see above). Any thread.
  void record(char kind, uint64_t submitted_ns, uint64_t offset, uint64_t bytes, const Status& st) const;
  static uint64_t now_ns();

 private:
  WriteLogDevice(BlockDevice& inner, int fd) : ForwardingDevice(inner), fd_(fd) {}
  const int fd_;
};

}  // namespace lunfs

// The synchronous IoQueue; see io_queue.h.
#include "fs/device/io_queue.h"

#include "fs/device/block_device.h"

namespace lunfs {

namespace {

class SynchronousIoQueue final : public IoQueue {
 public:
  explicit SynchronousIoQueue(BlockDevice& dev) : dev_(dev) {}

  void submit(std::span<const IoTransfer> transfers, IoCompletion& done) override {
    done.io_done(run_transfers(dev_, transfers));
    reaped();
  }

  void drain() override {}

 private:
  BlockDevice& dev_;
};

}  // namespace

Status run_transfers(BlockDevice& dev, std::span<const IoTransfer> transfers) {
  for (const IoTransfer& t : transfers) {
    LUNFS_TRY(t.kind == IoTransfer::Kind::kRead ? dev.read(t.offset, t.buf) : dev.write(t.offset, t.buf));
  }
  return Status::ok();
}

std::unique_ptr<IoQueue> make_synchronous_io_queue(BlockDevice& dev) {
  return std::make_unique<SynchronousIoQueue>(dev);
}

std::unique_ptr<IoQueue> BlockDevice::make_io_queue() { return make_synchronous_io_queue(*this); }

}  // namespace lunfs

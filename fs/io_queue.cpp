// The synchronous IoQueue; see io_queue.h.
#include "fs/io_queue.h"

#include "fs/block_device.h"

namespace lunfs {

namespace {

class SynchronousIoQueue final : public IoQueue {
 public:
  explicit SynchronousIoQueue(BlockDevice& dev) : dev_(dev) {}

  void submit(std::span<const IoTransfer> transfers, IoCompletion& done) override {
    Status first;
    for (const IoTransfer& t : transfers) {
      Status st = t.kind == IoTransfer::Kind::kRead ? dev_.read(t.offset, t.buf) : dev_.write(t.offset, t.buf);
      if (!st) {
        first = st;
        break;
      }
    }
    done.io_done(first);
  }

  void drain() override {}

 private:
  BlockDevice& dev_;
};

}  // namespace

std::unique_ptr<IoQueue> make_synchronous_io_queue(BlockDevice& dev) {
  return std::make_unique<SynchronousIoQueue>(dev);
}

std::unique_ptr<IoQueue> BlockDevice::make_io_queue() { return make_synchronous_io_queue(*this); }

}  // namespace lunfs

// FencedDevice; see fenced_device.h.
#include "fs/device/fenced_device.h"

#include <vector>

namespace lunfs {

namespace {

// The inner device's queue, with the fence and the lease checked before each batch goes
// out. A batch that only reads is let through like a read.
class FencedQueue final : public IoQueue {
 public:
  FencedQueue(const FencedDevice& fence, std::unique_ptr<IoQueue> inner) : fence_(fence), inner_(std::move(inner)) {}
  void submit(std::span<const IoTransfer> transfers, IoCompletion& done) override {
    bool writes = false;
    for (const IoTransfer& t : transfers) writes |= t.kind == IoTransfer::Kind::kWrite;
    if (writes) {
      if (Status st = fence_.may_write(); !st) {
        done.io_done(std::move(st));
        reaped();
        return;
      }
    }
    inner_->submit(transfers, done);
  }
  void drain() override { inner_->drain(); }
  // The inner queue runs it after the batches it completes, this one after those it refuses.
  void set_reap_hook(std::function<void()> hook) override {
    IoQueue::set_reap_hook(hook);
    inner_->set_reap_hook(std::move(hook));
  }

 private:
  const FencedDevice& fence_;
  std::unique_ptr<IoQueue> inner_;
};

}  // namespace

void FencedDevice::fence(const std::string& why) {
  std::lock_guard lock(mu_);
  if (fenced_.load(std::memory_order_relaxed)) return;
  why_ = why;
  fenced_.store(true, std::memory_order_release);
}

std::string FencedDevice::why() const {
  std::lock_guard lock(mu_);
  return why_;
}

Status FencedDevice::may_write() const {
  if (fenced()) return error(EIO, "write refused: this node is fenced from the LUN (" + why() + ")");
  if (DiskLease* lease = lease_.load(std::memory_order_acquire)) {
    LUNFS_TRY(lease->await());
    // Fenced while it waited: the lease came back, but the node may not write any more.
    if (fenced()) return error(EIO, "write refused: this node is fenced from the LUN (" + why() + ")");
  }
  return {};
}

Status FencedDevice::write(uint64_t offset, std::span<const std::byte> buf) {
  LUNFS_TRY(may_write());
  return inner_.write(offset, buf);
}

Status FencedDevice::flush() {
  LUNFS_TRY(may_write());
  return inner_.flush();
}

std::unique_ptr<IoQueue> FencedDevice::make_io_queue() {
  return std::make_unique<FencedQueue>(*this, inner_.make_io_queue());
}

}  // namespace lunfs

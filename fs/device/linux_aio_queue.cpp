// The IoQueue of FileBlockDevice: Linux native AIO (io_setup/io_submit/io_getevents) on
// the device's O_DIRECT descriptor, with one completion thread. Native AIO rather than
// io_uring: it needs no library (the three system calls are all we use), it is never
// disabled by policy the way io_uring can be (kernel.io_uring_disabled), and on an
// O_DIRECT file or block device it is truly asynchronous, which is the only case we use.
#include <linux/aio_abi.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "fs/device/block_device.h"
#include "fs/device/io_queue.h"

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
// The kernel orders io_submit before the io_getevents that returns its events; tell
// ThreadSanitizer, which cannot see that edge.
#define LUNFS_KERNEL_HANDS_OVER(p) __tsan_release(p)
#define LUNFS_KERNEL_HANDED_OVER(p) __tsan_acquire(p)
#else
#define LUNFS_KERNEL_HANDS_OVER(p) (void)(p)
#define LUNFS_KERNEL_HANDED_OVER(p) (void)(p)
#endif

namespace lunfs {

namespace {

// Enough for max_background (128) requests of a few extents each; a submission that finds
// the ring full runs its remaining transfers synchronously instead of waiting.
constexpr unsigned kRingEvents = 512;
constexpr unsigned kReapBatch = 64;
// How often an idle completion thread looks at the stop flag.
constexpr long kIdlePollNanoseconds = 50'000'000;

int io_setup(unsigned nr, aio_context_t* ctx) { return static_cast<int>(syscall(SYS_io_setup, nr, ctx)); }
int io_destroy(aio_context_t ctx) { return static_cast<int>(syscall(SYS_io_destroy, ctx)); }
int io_submit(aio_context_t ctx, long nr, iocb** iocbs) { return static_cast<int>(syscall(SYS_io_submit, ctx, nr, iocbs)); }
int io_getevents(aio_context_t ctx, long min_nr, long nr, io_event* events, timespec* timeout) {
  return static_cast<int>(syscall(SYS_io_getevents, ctx, min_nr, nr, events, timeout));
}

class LinuxAioQueue final : public IoQueue {
 public:
  LinuxAioQueue(aio_context_t ctx, int fd, BlockDevice& dev) : ctx_(ctx), fd_(fd), dev_(dev) {
    completer_ = std::thread([this] { complete_loop(); });
  }

  ~LinuxAioQueue() override {
    drain();
    stop_.store(true);
    completer_.join();
    io_destroy(ctx_);
  }

  void submit(std::span<const IoTransfer> transfers, IoCompletion& done) override;
  void drain() override {
    std::unique_lock lock(mu_);
    idle_.wait(lock, [this] { return batches_in_flight_ == 0; });
  }

 private:
  // One submit() call: its control blocks (the kernel hands each back in io_event.obj)
  // and how many are still running.
  struct Batch {
    IoCompletion* done;
    std::vector<iocb> iocbs;
    std::atomic<size_t> remaining{0};
    std::mutex error_mu;
    Status first_error;
  };

  void finish_transfer(Batch* batch, const Status& status);
  void complete_loop();
  Status transfer_error(const iocb& cb, int err, const char* what) const {
    return error(err, std::string(cb.aio_lio_opcode == IOCB_CMD_PREAD ? "read " : "write ") + dev_.describe() +
                          " at byte " + std::to_string(cb.aio_offset) + what);
  }

  const aio_context_t ctx_;
  const int fd_;
  BlockDevice& dev_;  // for transfers the ring has no room for
  std::thread completer_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable idle_;
  size_t batches_in_flight_ = 0;  // guarded by mu_
};

void LinuxAioQueue::submit(std::span<const IoTransfer> transfers, IoCompletion& done) {
  if (transfers.empty()) return done.io_done(Status::ok());
  bool queue_was_idle = false;
  {
    std::lock_guard lock(mu_);
    queue_was_idle = batches_in_flight_++ == 0;
  }
  if (queue_was_idle) {
    // Nothing else in flight (a VM at queue depth 1): waiting here answers ~15 µs sooner
    // than handing the transfer to the completion thread (docs/performance.md), and
    // requests that arrive meanwhile see this one in flight and go asynchronous.
    done.io_done(run_transfers(dev_, transfers));
    reaped();
    std::lock_guard lock(mu_);
    if (--batches_in_flight_ == 0) idle_.notify_all();
    return;
  }
  auto* batch = new Batch;
  batch->done = &done;
  batch->iocbs.resize(transfers.size());
  std::vector<iocb*> pointers(transfers.size());
  for (size_t i = 0; i < transfers.size(); ++i) {
    iocb& cb = batch->iocbs[i];
    cb = {};
    cb.aio_data = reinterpret_cast<uintptr_t>(batch);
    cb.aio_lio_opcode = transfers[i].kind == IoTransfer::Kind::kRead ? IOCB_CMD_PREAD : IOCB_CMD_PWRITE;
    cb.aio_fildes = static_cast<uint32_t>(fd_);
    cb.aio_buf = reinterpret_cast<uintptr_t>(transfers[i].buf.data());
    cb.aio_nbytes = transfers[i].buf.size();
    cb.aio_offset = static_cast<int64_t>(transfers[i].offset);
    pointers[i] = &cb;
  }
  batch->remaining.store(transfers.size(), std::memory_order_relaxed);
  LUNFS_KERNEL_HANDS_OVER(batch);
  size_t submitted = 0;
  while (submitted < transfers.size()) {
    int n = io_submit(ctx_, static_cast<long>(transfers.size() - submitted), pointers.data() + submitted);
    if (n > 0) {
      submitted += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;  // ring full (EAGAIN) or refused: the rest runs here, synchronously
    }
  }
  if (submitted == transfers.size()) return;
  // The batch may complete here, on this thread, so its deferred work must run here too.
  // Counted in flight until then, so that drain() waits for it.
  {
    std::lock_guard lock(mu_);
    ++batches_in_flight_;
  }
  for (size_t i = submitted; i < transfers.size(); ++i) finish_transfer(batch, run_transfers(dev_, transfers.subspan(i, 1)));
  reaped();
  std::lock_guard lock(mu_);
  if (--batches_in_flight_ == 0) idle_.notify_all();
}

void LinuxAioQueue::finish_transfer(Batch* batch, const Status& status) {
  if (!status) {
    std::lock_guard lock(batch->error_mu);
    if (batch->first_error) batch->first_error = status;
  }
  if (batch->remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  batch->done->io_done(batch->first_error);
  delete batch;
  std::lock_guard lock(mu_);
  if (--batches_in_flight_ == 0) idle_.notify_all();
}

void LinuxAioQueue::complete_loop() {
  io_event events[kReapBatch];
  for (;;) {
    timespec idle_poll{0, kIdlePollNanoseconds};
    int n = io_getevents(ctx_, 1, kReapBatch, events, &idle_poll);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "lunfs: io_getevents: %s; asynchronous I/O stops\n", std::strerror(errno));
      return;
    }
    if (n > 0) {
      // The reap counts as a batch in flight until its deferred work has run: drain()
      // must not return in between.
      std::lock_guard lock(mu_);
      ++batches_in_flight_;
    }
    for (int i = 0; i < n; ++i) {
      auto* batch = reinterpret_cast<Batch*>(static_cast<uintptr_t>(events[i].data));
      LUNFS_KERNEL_HANDED_OVER(batch);
      const iocb& cb = *reinterpret_cast<const iocb*>(static_cast<uintptr_t>(events[i].obj));
      const int64_t res = events[i].res;
      Status st;
      if (res < 0) st = transfer_error(cb, static_cast<int>(-res), "");
      else if (static_cast<uint64_t>(res) != cb.aio_nbytes) st = transfer_error(cb, EIO, ": short transfer");
      finish_transfer(batch, st);
    }
    if (n > 0) {
      reaped();
      std::lock_guard lock(mu_);
      if (--batches_in_flight_ == 0) idle_.notify_all();
    }
    if (n == 0 && stop_.load()) {
      std::lock_guard lock(mu_);
      if (batches_in_flight_ == 0) return;
    }
  }
}

}  // namespace

std::unique_ptr<IoQueue> FileBlockDevice::make_io_queue() {
  if (!direct_) return make_synchronous_io_queue(*this);
  aio_context_t ctx = 0;
  if (io_setup(kRingEvents, &ctx) != 0) {
    std::fprintf(stderr, "lunfs: io_setup: %s; data transfers run synchronously\n", std::strerror(errno));
    return make_synchronous_io_queue(*this);
  }
  return std::make_unique<LinuxAioQueue>(ctx, fd_, *this);
}

}  // namespace lunfs

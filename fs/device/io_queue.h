// Asynchronous block I/O for the data path. A VM at queue depth 32 sends 32 requests at
// once; served by blocking pread/pwrite, each needs a daemon thread parked in the kernel,
// and the daemon's ten threads capped the LUN's queue at ten (docs/performance.md). An
// IoQueue takes a request's transfers, returns at once, and reports completion later, so
// the thread that submitted goes back to the next FUSE request.
//
// FileBlockDevice serves it with Linux native AIO (io_submit, one completion thread); any
// other device — memory devices, fault injectors — with the synchronous queue, which
// completes inside submit(), so tests see the same faults on both paths.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "fs/result.h"

namespace lunfs {

class BlockDevice;

struct IoTransfer {
  enum class Kind : uint8_t { kRead, kWrite } kind;
  uint64_t offset;             // device bytes, aligned like BlockDevice I/O
  std::span<std::byte> buf;    // aligned to kDirectIoMemoryAlignment; the device's until completion
};

// Told once per submit() call, when all of its transfers have finished (the first error, or
// ok). Runs on the queue's completion thread, or inside submit() for synchronous queues, so
// it must not take locks that a submitter may hold while submitting.
class IoCompletion {
 public:
  virtual void io_done(Status status) = 0;

 protected:
  ~IoCompletion() = default;
};

class IoQueue {
 public:
  virtual ~IoQueue() = default;
  // Starts the transfers; `done` must stay alive until its io_done() has been called.
  virtual void submit(std::span<const IoTransfer> transfers, IoCompletion& done) = 0;
  // Returns when every submitted batch has completed.
  virtual void drain() = 0;

  // Completions may leave work for `hook`, which the queue runs on the completing thread
  // after each round of io_done() calls: after each reap of the completion thread, and
  // after a batch completed inside submit(). FileSystem gives the second transactions of
  // the allocating writes one reap completed one transaction together (direct_io.cpp).
  // Set before the first submit(); it may run on several threads at once. A queue that
  // hands its batches to another queue must pass the hook on (and run it after any batch
  // it completes itself): a completion whose deferred work no hook runs never ends.
  virtual void set_reap_hook(std::function<void()> hook) { reap_hook_ = std::move(hook); }

 protected:
  void reaped() {
    if (reap_hook_) reap_hook_();
  }

 private:
  std::function<void()> reap_hook_;
};

// Completes each batch inside submit() with the device's blocking read/write.
std::unique_ptr<IoQueue> make_synchronous_io_queue(BlockDevice& dev);

// The transfers one after the other with the device's blocking read/write; the first error.
Status run_transfers(BlockDevice& dev, std::span<const IoTransfer> transfers);

}  // namespace lunfs

// A node's write fence on the shared LUN (issue 13, decision 7). Once a cluster mount may
// no longer write — its lock space failed or it lost quorum — the other nodes will replay
// its journal and reuse what it held, so every write it still tries would land on blocks
// that are no longer its own. FencedDevice sits between the mount and the LUN: after
// fence() every write, flush and queued transfer fails with EIO instead of reaching the
// device (reads go on: they change nothing, and the withdrawn mount answers them with EIO
// at the file system layer anyway). With a disk lease (set_lease) each of them first
// waits for the lease to hold (disk_lease.h). The checks come before each submission; a
// write already inside the kernel when the fence or the lease's deadline comes completes —
// the survivors' margin (disk_lease.h) is what covers it.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "fs/device/forwarding_device.h"
#include "fs/device/disk_lease.h"

namespace lunfs {

class FencedDevice final : public ForwardingDevice {
 public:
  explicit FencedDevice(BlockDevice& inner) : ForwardingDevice(inner) {}

  // From now on nothing is written. Idempotent; the first reason is kept. Any thread.
  void fence(const std::string& why);
  bool fenced() const { return fenced_.load(std::memory_order_acquire); }
  std::string why() const;
  // Every write from now on waits for `lease` to hold (nullptr: no lease, as for a
  // single-host mount). Set it before the writes it is to cover.
  void set_lease(DiskLease* lease) { lease_.store(lease, std::memory_order_release); }
  // The fence, then the lease: OK when a write may be submitted now.
  Status may_write() const;

  Status write(uint64_t offset, std::span<const std::byte> buf) override;
  Status flush() override;
  std::unique_ptr<IoQueue> make_io_queue() override;

 private:
  std::atomic<bool> fenced_{false};
  std::atomic<DiskLease*> lease_{nullptr};
  mutable std::mutex mu_;
  std::string why_;  // guarded by mu_
};

}  // namespace lunfs

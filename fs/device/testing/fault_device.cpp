// FaultInjectingDevice: volatile write cache, power loss and I/O error injection for tests.
#include "fs/device/testing/fault_device.h"

#include <algorithm>
#include <cstring>

namespace lunfs {

Status FaultInjectingDevice::injected(IoKind kind, uint64_t offset, uint64_t length) {
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (it->kind != kind) continue;
    if (it->countdown > 0) {
      if (--it->countdown == 0) {
        int err = it->err;
        faults_.erase(it);
        return error(err, "injected fault");
      }
      continue;
    }
    bool overlaps = kind == IoKind::kFlush ||
                    (offset < it->offset + it->length && it->offset < offset + length);
    if (overlaps) return error(it->err, "injected fault at byte " + std::to_string(offset));
  }
  return Status::ok();
}

Status FaultInjectingDevice::read(uint64_t offset, std::span<std::byte> buf) {
  std::lock_guard lock(mu_);
  LUNFS_TRY(injected(IoKind::kRead, offset, buf.size()));
  LUNFS_TRY(inner_.read(offset, buf));
  // Reads see the cache: overlay un-flushed writes in issue order.
  for (const auto& w : pending_) {
    uint64_t lo = std::max(offset, w.offset);
    uint64_t hi = std::min(offset + buf.size(), w.offset + w.data.size());
    if (lo < hi) std::memcpy(buf.data() + (lo - offset), w.data.data() + (lo - w.offset), hi - lo);
  }
  return Status::ok();
}

Status FaultInjectingDevice::write(uint64_t offset, std::span<const std::byte> buf) {
  std::lock_guard lock(mu_);
  LUNFS_TRY(injected(IoKind::kWrite, offset, buf.size()));
  if (offset % io_alignment() || buf.size() % io_alignment()) {
    return error(EINVAL, "unaligned write");
  }
  if (offset > size_bytes() || buf.size() > size_bytes() - offset) {
    return error(ENOSPC, "write beyond the end of the device");
  }
  pending_.push_back({offset, std::vector<std::byte>(buf.begin(), buf.end())});
  return Status::ok();
}

Status FaultInjectingDevice::apply(const PendingWrite& w, size_t bytes) {
  return inner_.write(w.offset, std::span<const std::byte>(w.data.data(), bytes));
}

Status FaultInjectingDevice::flush() {
  std::lock_guard lock(mu_);
  LUNFS_TRY(injected(IoKind::kFlush, 0, 0));
  for (const auto& w : pending_) LUNFS_TRY(apply(w, w.data.size()));
  pending_.clear();
  return inner_.flush();
}

Status FaultInjectingDevice::crash(size_t keep_writes, size_t torn_sectors) {
  std::lock_guard lock(mu_);
  keep_writes = std::min(keep_writes, pending_.size());
  for (size_t i = 0; i < keep_writes; ++i) LUNFS_TRY(apply(pending_[i], pending_[i].data.size()));
  if (keep_writes < pending_.size() && torn_sectors > 0) {
    const auto& w = pending_[keep_writes];
    LUNFS_TRY(apply(w, std::min(w.data.size(), torn_sectors * io_alignment())));
  }
  pending_.clear();
  faults_.clear();
  return inner_.flush();
}

Status FaultInjectingDevice::crash_with_subset(const std::vector<bool>& keep) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < pending_.size() && i < keep.size(); ++i) {
    if (keep[i]) LUNFS_TRY(apply(pending_[i], pending_[i].data.size()));
  }
  pending_.clear();
  faults_.clear();
  return inner_.flush();
}

size_t FaultInjectingDevice::pending_writes() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

void FaultInjectingDevice::fail_nth(IoKind kind, uint64_t nth, int err) {
  std::lock_guard lock(mu_);
  faults_.push_back({kind, std::max<uint64_t>(nth, 1), 0, 0, err});
}

void FaultInjectingDevice::fail_range(IoKind kind, uint64_t offset, uint64_t length, int err) {
  std::lock_guard lock(mu_);
  faults_.push_back({kind, 0, offset, length, err});
}

void FaultInjectingDevice::clear_faults() {
  std::lock_guard lock(mu_);
  faults_.clear();
}

}  // namespace lunfs

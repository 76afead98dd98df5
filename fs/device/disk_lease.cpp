// DiskLease; see disk_lease.h.
#include "fs/device/disk_lease.h"

#include <cerrno>
#include <cstdio>

namespace lunfs {

using namespace std::chrono;

namespace {

std::string seconds(nanoseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", duration<double>(d).count());
  return buf;
}

// How often a blocked writer looks at the clock: a test's clock moves without waking it.
constexpr milliseconds kRecheck{10};

}  // namespace

DiskLease::DiskLease(MonotonicClock& clock, nanoseconds lease, nanoseconds wait_limit, nanoseconds started,
                     Logger log)
    : clock_(clock), lease_(lease), wait_limit_(wait_limit), log_(std::move(log)), deadline_(started + lease) {}

bool DiskLease::renewed(nanoseconds started) {
  std::lock_guard lock(mu_);
  if (started >= deadline_) return false;
  deadline_ = std::max(deadline_, started + lease_);
  return true;
}

void DiskLease::restore(nanoseconds started) {
  std::string note;
  {
    std::lock_guard lock(mu_);
    const nanoseconds out_for = clock_.now() - deadline_;
    deadline_ = std::max(deadline_, started + lease_);
    note = "disk lease back after it had run out for " + seconds(out_for) +
           ": renewed, and this node is still a member of the lock space" +
           (out_reported_ ? "; the writes held meanwhile go on" : "");
    out_reported_ = false;
  }
  restored_.notify_all();
  if (log_) log_(note);
}

Status DiskLease::await() {
  std::unique_lock lock(mu_);
  nanoseconds now = clock_.now();
  if (now < deadline_) return {};
  const nanoseconds since = now;
  if (!out_reported_) {
    out_reported_ = true;
    const std::string note = "DISK LEASE RAN OUT " + seconds(now - deadline_) +
                             " ago (no heartbeat renewal completed in time: a hung or failing LUN, or this "
                             "daemon was stopped): writes wait for a renewal and for this node's membership of "
                             "the lock space to be confirmed, at most " + seconds(wait_limit_) +
                             ", then fail with EIO";
    lock.unlock();
    if (log_) log_(note);
    lock.lock();
  }
  for (;;) {
    restored_.wait_for(lock, kRecheck);
    now = clock_.now();
    if (now < deadline_) return {};
    if (now - since >= wait_limit_) {
      return error(EIO, "write refused: this node's disk lease ran out " + seconds(now - deadline_) +
                            " ago and did not come back within " + seconds(wait_limit_) +
                            " (the other nodes may recover this node's journal once it has left the lock space)");
    }
  }
}

nanoseconds DiskLease::deadline() const {
  std::lock_guard lock(mu_);
  return deadline_;
}

}  // namespace lunfs

// Heartbeat watching and renewal; see heartbeat.h and docs/format.md, "Heartbeat".
#include "fs/core/heartbeat.h"

#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <climits>
#include <cstdio>
#include <random>

#include "fs/device/aligned_buffer.h"

namespace lunfs {

namespace {

using namespace std::chrono;

std::string seconds_text(nanoseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", duration<double>(d).count());
  return buf;
}

// The lease a watcher assumes for a record: its own unless the record names one, and never
// longer than the longest interval a writer may use (a damaged-but-verifying value must not
// make a mount wait for days).
milliseconds lease_of(const ondisk::Heartbeat& r, milliseconds own_interval) {
  const milliseconds own = heartbeat_lease(own_interval);
  if (r.lease_ms == 0) return own;
  return std::min(milliseconds(r.lease_ms), heartbeat_lease(kMaxHeartbeatInterval));
}

milliseconds interval_of(const ondisk::Heartbeat& r, milliseconds own_interval) {
  if (r.interval_ms == 0) return own_interval;
  return std::min(milliseconds(r.interval_ms), kMaxHeartbeatInterval);
}

}  // namespace

std::string describe_heartbeat_holder(const ondisk::Heartbeat& r) {
  char id[32];
  std::snprintf(id, sizeof id, "%016" PRIx64, r.mount_id);
  std::string who = r.host.empty() ? "a host that did not record its name" : "host " + r.host;
  return who + " (node " + std::to_string(r.node) + ", pid " + std::to_string(r.pid) + ", mount id " + id + ")";
}

HeartbeatIdentity local_heartbeat_identity(uint32_t node) {
  HeartbeatIdentity id;
  id.node = node;
  char host[HOST_NAME_MAX + 1] = {};
  if (gethostname(host, sizeof host - 1) == 0) id.host.assign(host, strnlen(host, ondisk::kHeartbeatHostMax));
  std::random_device rd;
  while (id.mount_id == 0) id.mount_id = (uint64_t{rd()} << 32) | rd();
  return id;
}

Result<std::vector<SlotLiveness>> watch_heartbeats(BlockDevice& dev, const ondisk::Superblock& sb,
                                                   std::span<const uint32_t> slots, MonotonicClock& clock,
                                                   const HeartbeatWatchOptions& options) {
  const auto& g = sb.geometry;
  const uint64_t bs = g.block_size;
  // Every heartbeat block in one read (they are contiguous: docs/format.md, "Layout").
  AlignedBuffer area(uint64_t{g.journal_count} * bs);
  auto read_area = [&]() -> Status {
    if (auto st = dev.read(g.heartbeat_start * bs, area.span()); !st) {
      return error(st.err(), "cannot read the heartbeat blocks: " + st.message());
    }
    return {};
  };
  auto block = [&](uint32_t slot) { return std::span<const std::byte>(area.span().subspan(slot * bs, bs)); };

  LUNFS_TRY(read_area());
  std::vector<SlotLiveness> out;
  std::vector<std::vector<std::byte>> first;  // the bytes first read, per entry
  milliseconds window{0};
  milliseconds poll = kMaxHeartbeatInterval;
  for (uint32_t slot : slots) {
    if (slot >= g.journal_count) return error(EINVAL, "slot " + std::to_string(slot) + " does not exist");
    SlotLiveness s;
    s.slot = slot;
    first.emplace_back(block(slot).begin(), block(slot).end());
    auto r = ondisk::decode_heartbeat(block(slot), g.heartbeat(slot), sb.csum_seed, g);
    bool watch = false;
    if (!r) {
      s.state = SlotLiveness::State::kDamaged;
      s.damage = r.status().message();
      watch = options.watch_damaged;
      if (watch) {
        window = std::max(window, heartbeat_lease(options.interval) + kHeartbeatMargin);
        poll = std::min(poll, options.interval / 2);
      }
    } else {
      s.record = *r;
      if (r->state == ondisk::HeartbeatState::kLive) {
        watch = true;
        window = std::max(window, lease_of(*r, options.interval) + kHeartbeatMargin);
        poll = std::min(poll, interval_of(*r, options.interval) / 2);
      }
    }
    // Entries still under watch carry kStale until they change or the window ends.
    if (watch) s.state = SlotLiveness::State::kStale;
    out.push_back(std::move(s));
  }
  poll = std::clamp(poll, milliseconds(50), milliseconds(1000));
  auto watched = [](const SlotLiveness& s) { return s.state == SlotLiveness::State::kStale && !s.renewed; };
  if (std::none_of(out.begin(), out.end(), watched)) return out;
  if (options.on_watch) options.on_watch(window);

  const nanoseconds start = clock.now();
  bool any_renewed = false;
  while (!any_renewed) {
    const nanoseconds elapsed = clock.now() - start;
    if (elapsed >= window) break;
    clock.sleep_for(std::min<nanoseconds>(poll, window - elapsed));
    LUNFS_TRY(read_area());
    const nanoseconds now = clock.now() - start;
    for (size_t i = 0; i < out.size(); ++i) {
      SlotLiveness& s = out[i];
      if (s.state != SlotLiveness::State::kStale) continue;
      auto bytes = block(s.slot);
      if (std::equal(bytes.begin(), bytes.end(), first[i].begin())) {
        s.unchanged_for = now;
        continue;
      }
      auto r = ondisk::decode_heartbeat(bytes, g.heartbeat(s.slot), sb.csum_seed, g);
      if (r) {
        s.record = *r;
        s.damage.clear();
      }
      if (r && r->state == ondisk::HeartbeatState::kFree) {
        s.state = SlotLiveness::State::kClean;  // unmounted cleanly while we watched
      } else {
        s.state = SlotLiveness::State::kLive;
        s.renewed = true;
        any_renewed = true;
      }
    }
  }
  if (any_renewed) {
    for (auto& s : out) {
      if (s.state == SlotLiveness::State::kStale) s.state = SlotLiveness::State::kLive;  // not proven stale
    }
  }
  return out;
}

HeartbeatObserver::HeartbeatObserver(BlockDevice& dev, const ondisk::Superblock& sb, MonotonicClock& clock,
                                     milliseconds interval)
    : dev_(dev), sb_(sb), clock_(clock), interval_(interval), seen_(sb.geometry.journal_count) {}

Status HeartbeatObserver::poll() {
  const auto& g = sb_.geometry;
  const uint64_t bs = g.block_size;
  AlignedBuffer area(uint64_t{g.journal_count} * bs);
  if (auto st = dev_.read(g.heartbeat_start * bs, area.span()); !st) {
    return error(st.err(), "cannot read the heartbeat blocks: " + st.message());
  }
  const nanoseconds now = clock_.now();
  for (uint32_t slot = 0; slot < g.journal_count; ++slot) {
    auto bytes = area.span().subspan(slot * bs, bs);
    Seen& s = seen_[slot];
    if (!s.polled || !std::equal(bytes.begin(), bytes.end(), s.bytes.begin(), s.bytes.end())) {
      s.bytes.assign(bytes.begin(), bytes.end());
      s.first_seen = now;
      s.polled = true;
    }
  }
  return {};
}

SlotLiveness HeartbeatObserver::liveness(uint32_t slot) const {
  SlotLiveness out;
  out.slot = slot;
  out.state = SlotLiveness::State::kLive;
  if (slot >= seen_.size() || !seen_[slot].polled) return out;
  const Seen& s = seen_[slot];
  const auto& g = sb_.geometry;
  auto r = ondisk::decode_heartbeat(s.bytes, g.heartbeat(slot), sb_.csum_seed, g);
  out.unchanged_for = clock_.now() - s.first_seen;
  milliseconds lease = heartbeat_lease(interval_);
  if (!r) {  // watched like a live record (watch_damaged)
    out.damage = r.status().message();
    out.state = out.unchanged_for >= lease + kHeartbeatMargin ? SlotLiveness::State::kStale : SlotLiveness::State::kLive;
    return out;
  }
  out.record = *r;
  if (r->state != ondisk::HeartbeatState::kLive) {
    out.state = SlotLiveness::State::kClean;
    return out;
  }
  lease = lease_of(*r, interval_);
  out.state = out.unchanged_for >= lease + kHeartbeatMargin ? SlotLiveness::State::kStale : SlotLiveness::State::kLive;
  return out;
}

milliseconds HeartbeatObserver::poll_interval() const {
  milliseconds poll = interval_ / 2;
  const auto& g = sb_.geometry;
  for (uint32_t slot = 0; slot < seen_.size(); ++slot) {
    if (!seen_[slot].polled) continue;
    auto r = ondisk::decode_heartbeat(seen_[slot].bytes, g.heartbeat(slot), sb_.csum_seed, g);
    if (r && r->state == ondisk::HeartbeatState::kLive) poll = std::min(poll, interval_of(*r, interval_) / 2);
  }
  return std::clamp(poll, milliseconds(50), milliseconds(1000));
}

Status mark_heartbeat_clean(BlockDevice& dev, const ondisk::Superblock& sb, const SlotLiveness& seen) {
  const auto& g = sb.geometry;
  const uint64_t blocknr = g.heartbeat(seen.slot);
  AlignedBuffer buf(g.block_size);
  LUNFS_TRY(dev.read(blocknr * g.block_size, buf.span()));
  auto cur = ondisk::decode_heartbeat(buf.span(), blocknr, sb.csum_seed, g);
  const bool seen_damaged = !seen.damage.empty();
  if (cur ? seen_damaged || !(*cur == seen.record) : !seen_damaged) {
    return error(EBUSY, "slot " + std::to_string(seen.slot) + ": its heartbeat changed since it was watched");
  }
  ondisk::Heartbeat clean = cur ? *cur : ondisk::Heartbeat{};
  clean.slot = seen.slot;
  clean.state = ondisk::HeartbeatState::kFree;
  clean.counter += 1;
  ondisk::encode_heartbeat(clean, buf.span(), blocknr, sb.csum_seed);
  LUNFS_TRY(dev.write(blocknr * g.block_size, buf.span()));
  return dev.flush();
}

SlotHeartbeat::SlotHeartbeat(BlockDevice& dev, const ondisk::Superblock& sb, uint32_t slot, milliseconds interval,
                             MonotonicClock& clock, Logger log)
    : dev_(dev), sb_(sb), slot_(slot), interval_(interval), clock_(clock), log_(std::move(log)) {}

SlotHeartbeat::~SlotHeartbeat() { stop(); }

uint64_t SlotHeartbeat::block_offset() const { return sb_.geometry.heartbeat(slot_) * sb_.geometry.block_size; }

Result<std::unique_ptr<SlotHeartbeat>> SlotHeartbeat::claim(BlockDevice& dev, const ondisk::Superblock& sb,
                                                            uint32_t slot, HeartbeatIdentity identity,
                                                            milliseconds interval, MonotonicClock& clock,
                                                            Logger log) {
  if (slot >= sb.geometry.journal_count) return error(EINVAL, "slot " + std::to_string(slot) + " does not exist");
  std::unique_ptr<SlotHeartbeat> hb(new SlotHeartbeat(dev, sb, slot, interval, clock, std::move(log)));
  AlignedBuffer buf(sb.geometry.block_size);
  if (auto st = dev.read(hb->block_offset(), buf.span()); !st) {
    return error(st.err(), "slot " + std::to_string(slot) + ": cannot read its heartbeat: " + st.message());
  }
  auto prev = ondisk::decode_heartbeat(buf.span(), sb.geometry.heartbeat(slot), sb.csum_seed, sb.geometry);
  std::lock_guard lock(hb->mu_);
  ondisk::Heartbeat& rec = hb->last_;
  rec.slot = slot;
  rec.node = identity.node;
  rec.mount_id = identity.mount_id;
  rec.host = identity.host;
  rec.interval_ms = static_cast<uint32_t>(interval.count());
  rec.lease_ms = static_cast<uint32_t>(heartbeat_lease(interval).count());
  rec.counter = prev ? prev->counter : 0;
  rec.mount_generation = prev ? prev->mount_generation + 1 : 1;
  if (auto st = hb->write_record(ondisk::HeartbeatState::kLive); !st) {
    return error(st.err(), "slot " + std::to_string(slot) + ": cannot write its heartbeat: " + st.message());
  }
  hb->last_renewal_ = clock.now();
  return hb;
}

Status SlotHeartbeat::write_record(ondisk::HeartbeatState state) {
  ondisk::Heartbeat next = last_;
  next.state = state;
  next.counter = last_.counter + 1;
  next.pid = static_cast<uint32_t>(::getpid());
  next.timestamp_ns = duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
  AlignedBuffer buf(sb_.geometry.block_size);
  ondisk::encode_heartbeat(next, buf.span(), sb_.geometry.heartbeat(slot_), sb_.csum_seed);
  LUNFS_TRY(dev_.write(block_offset(), buf.span()));
  // The write counts as a renewal only once it is durable: a watcher may act on what it reads.
  LUNFS_TRY(dev_.flush());
  last_ = next;
  return {};
}

Status SlotHeartbeat::renew() {
  const std::string slot = "slot " + std::to_string(slot_);
  std::string note;
  Status st;
  {
    std::lock_guard lock(mu_);
    AlignedBuffer buf(sb_.geometry.block_size);
    LUNFS_TRY(dev_.read(block_offset(), buf.span()));
    auto cur = ondisk::decode_heartbeat(buf.span(), sb_.geometry.heartbeat(slot_), sb_.csum_seed, sb_.geometry);
    if (cur && cur->mount_id != last_.mount_id) {
      return error(EBUSY, slot + ": its heartbeat was rewritten by " + describe_heartbeat_holder(*cur) +
                              ": another mount has taken the slot over, and two mounts writing one file system "
                              "corrupt it; not renewing");
    }
    // Ours: a write whose flush failed may have landed, so continue from the higher counter.
    if (cur) last_.counter = std::max(last_.counter, cur->counter);
    st = write_record(ondisk::HeartbeatState::kLive);
    if (st && !cur) {
      note = slot + ": its heartbeat block was damaged since the last renewal (" + cur.status().message() +
             "); rewritten";
    }
  }
  if (!note.empty()) log_(note);
  return st;
}

void SlotHeartbeat::tick() {
  const nanoseconds started = clock_.now();
  Status st = renew();
  const nanoseconds now = clock_.now();
  std::vector<std::string> messages;
  {
    std::lock_guard lock(mu_);
    const std::string slot = "slot " + std::to_string(slot_);
    if (st) {
      if (failures_ > 0) messages.push_back(slot + ": heartbeat renewed again after " + std::to_string(failures_) +
                                            " failed renewal(s)");
      failures_ = 0;
      last_renewal_ = now;
      lost_reported_ = false;
    } else {
      ++failures_;
      messages.push_back(slot + ": heartbeat renewal failed: " + st.to_string());
      const milliseconds lease = heartbeat_lease(interval_);
      if (!lost_reported_ && now - last_renewal_ > lease) {
        lost_reported_ = true;
        messages.push_back("HEARTBEAT LOST: " + slot + " has not been renewed for " +
                           seconds_text(now - last_renewal_) + " (" + std::to_string(failures_) +
                           " failed renewals; lease " + seconds_text(lease) +
                           "): a mount on another host may now take the file system as abandoned and mount it, "
                           "and two hosts writing it corrupt it. " +
                           (renewal_hook_ ? std::string("This mount's writes wait for its disk lease to come back")
                                          : std::string("This mount keeps running (lockproto=nolock); check the "
                                                        "LUN's path and unmount if it cannot be restored")));
      }
    }
  }
  for (const auto& m : messages) log_(m);
  if (st && renewal_hook_) renewal_hook_(started);
}

void SlotHeartbeat::start() {
  std::lock_guard lock(thread_mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] {
    std::unique_lock lock(thread_mu_);
    while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) {
      lock.unlock();
      tick();
      lock.lock();
    }
  });
}

void SlotHeartbeat::stop() {
  {
    std::lock_guard lock(thread_mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status SlotHeartbeat::release() {
  stop();
  std::lock_guard lock(mu_);
  AlignedBuffer buf(sb_.geometry.block_size);
  LUNFS_TRY(dev_.read(block_offset(), buf.span()));
  auto cur = ondisk::decode_heartbeat(buf.span(), sb_.geometry.heartbeat(slot_), sb_.csum_seed, sb_.geometry);
  if (cur && cur->mount_id != last_.mount_id) {
    return error(EBUSY, "slot " + std::to_string(slot_) + ": not marking the heartbeat clean: it was rewritten by " +
                            describe_heartbeat_holder(*cur));
  }
  if (cur) last_.counter = std::max(last_.counter, cur->counter);
  return write_record(ondisk::HeartbeatState::kFree);
}

uint64_t SlotHeartbeat::counter() const {
  std::lock_guard lock(mu_);
  return last_.counter;
}

unsigned SlotHeartbeat::consecutive_failures() const {
  std::lock_guard lock(mu_);
  return failures_;
}

}  // namespace lunfs

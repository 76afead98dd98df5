// lunfs tune (tune.h). The UUID is not a checksum seed once the file system exists: mkfs
// derives csum_seed and dir_hash_seed from the UUID it chose and stores them, and every
// reader takes them from the superblock, so a new UUID leaves every block valid as it is.
// What the UUID does mark is the journal records (journal/log_format.h): a record naming
// another UUID is "another file system's". With every journal clean those records are
// obsolete, so a UUID change zeroes them first (otherwise fsck would report them as left
// over from an earlier file system), then writes the primary superblock, then the backup,
// each flushed.
#include "mkfs/lunfs/tune.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>
#include <optional>

#include "fs/core/heartbeat.h"
#include "fs/device/aligned_buffer.h"
#include "fs/device/block_device.h"
#include "fs/device/device_claim.h"
#include "fs/format/ondisk.h"
#include "fsck/checker.h"
#include "fsck/journal_recovery.h"
#include "journal/log_format.h"

namespace lunfs {

namespace {

std::string n(uint64_t v) { return std::to_string(v); }

// Block types 0x20-0x2f are journal records (docs/format.md): each names its UUID.
constexpr uint16_t kFirstLogType = 0x20;
constexpr uint16_t kLastLogType = 0x2f;

// Refuses a file system some mount may still use: a heartbeat that is renewed (mounted
// elsewhere), stale (a mount crashed: its journal and slot belong to recovery) or damaged.
Status check_heartbeats(BlockDevice& dev, const ondisk::Superblock& sb, const std::string& path,
                        const TuneOptions& options) {
  std::vector<uint32_t> slots(sb.geometry.journal_count);
  std::iota(slots.begin(), slots.end(), 0u);
  HeartbeatWatchOptions watch;
  watch.watch_damaged = true;
  watch.on_watch = [&](std::chrono::milliseconds window) {
    if (options.note) {
      options.note("a heartbeat says " + path + " is mounted; watching it for " + n(window.count() / 1000) +
                   " s to tell a live mount from a crashed one");
    }
  };
  LUNFS_ASSIGN(auto liveness, watch_heartbeats(dev, sb, slots, steady_monotonic_clock(), watch));
  for (const auto& s : liveness) {
    if (s.state == SlotLiveness::State::kLive) {
      return error(EBUSY, path + " is mounted on slot " + n(s.slot) + " by " + describe_heartbeat_holder(s.record) +
                              " (its heartbeat " + (s.renewed ? "was renewed while tune watched it" : "says live") +
                              "); unmount it on every node first");
    }
    if (s.state == SlotLiveness::State::kStale || s.state == SlotLiveness::State::kDamaged) {
      const std::string what = s.damage.empty() ? "the heartbeat of " + describe_heartbeat_holder(s.record) +
                                                      " says mounted but is not renewed (a mount crashed)"
                                                : "the heartbeat block is damaged (" + s.damage + ")";
      return error(EBUSY, path + ": slot " + n(s.slot) + ": " + what +
                              "; if no node has it mounted, run fsck.lunfs -y --all-nodes-unmounted first");
    }
  }
  return Status::ok();
}

// Zeroes every journal block that is a record of the file system `uuid` names. Journal by
// journal in 1 MiB reads; a chunk is written back only when it held one.
Status sweep_journals(BlockDevice& dev, const ondisk::Superblock& sb, const TuneOptions& options,
                      uint64_t* zeroed) {
  const auto& g = sb.geometry;
  const uint64_t bs = g.block_size;
  const uint64_t chunk = std::max<uint64_t>(1, (1u << 20) / bs);
  const uint64_t total = uint64_t{g.journal_count} * g.journal_blocks;
  AlignedBuffer buf(chunk * bs);
  uint64_t done = 0;
  for (uint32_t slot = 0; slot < g.journal_count; ++slot) {
    for (uint64_t i = 0; i < g.journal_blocks; i += chunk) {
      const uint64_t count = std::min<uint64_t>(chunk, g.journal_blocks - i);
      auto part = buf.span().first(count * bs);
      const uint64_t offset = (g.journal(slot) + i) * bs;
      LUNFS_TRY(dev.read(offset, part));
      bool dirty = false;
      for (uint64_t k = 0; k < count; ++k) {
        auto block = part.subspan(k * bs, bs);
        uint32_t magic;
        uint16_t type;
        std::memcpy(&magic, block.data(), sizeof magic);
        std::memcpy(&type, block.data() + 4, sizeof type);
        if (magic != ondisk::kMagic || type < kFirstLogType || type > kLastLogType) continue;
        if (std::memcmp(block.data() + journal::kUuidOffset, sb.uuid.data(), sb.uuid.size()) != 0) continue;
        std::memset(block.data(), 0, block.size());
        dirty = true;
        ++*zeroed;
      }
      if (dirty) LUNFS_TRY(dev.write(offset, part));
      done += count;
      if (options.progress) options.progress(done, total);
    }
  }
  return dev.flush();
}

Status write_superblock(BlockDevice& dev, const ondisk::Superblock& sb, uint64_t block) {
  AlignedBuffer buf(sb.geometry.block_size);
  ondisk::encode_superblock(sb, buf.span(), block);
  LUNFS_TRY(dev.write(block * sb.geometry.block_size, buf.span()));
  return dev.flush();
}

}  // namespace

std::array<uint8_t, 16> random_uuid_v4() {
  std::array<uint8_t, 16> u{};
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (::read(fd, u.data(), u.size()) != static_cast<ssize_t>(u.size())) u.fill(0);
    ::close(fd);
  }
  if (u == std::array<uint8_t, 16>{}) {  // no /dev/urandom: the clock, mixed
    const uint64_t t = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
    const uint64_t s = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                       (uint64_t{static_cast<uint32_t>(getpid())} << 32);
    std::memcpy(u.data(), &t, 8);
    std::memcpy(u.data() + 8, &s, 8);
  }
  u[6] = static_cast<uint8_t>((u[6] & 0x0f) | 0x40);  // version 4
  u[8] = static_cast<uint8_t>((u[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return u;
}

Status validate_tune_request(const TuneRequest& r) {
  if (!r.label && !r.cluster_name && !r.fs_name && !r.uuid) {
    return error(EINVAL, "nothing to change: give -L LABEL, -t CLUSTER:FSNAME or -U UUID");
  }
  if (r.label) {
    if (r.label->size() > ondisk::kLabelMax) {
      return error(EINVAL, "label '" + *r.label + "' is " + n(r.label->size()) + " bytes; at most " +
                               n(ondisk::kLabelMax));
    }
  }
  if (r.cluster_name.has_value() != r.fs_name.has_value()) {
    return error(EINVAL, "the lock table needs both names: -t CLUSTER:FSNAME");
  }
  if (r.cluster_name && (!ondisk::valid_name(*r.cluster_name) || !ondisk::valid_name(*r.fs_name))) {
    return error(EINVAL, "'" + *r.cluster_name + ":" + *r.fs_name +
                             "': cluster and file system names must each be 1-32 characters of A-Z a-z 0-9 _ -");
  }
  if (r.uuid && *r.uuid == std::array<uint8_t, 16>{}) {
    return error(EINVAL, "the nil UUID (all zeros) names no file system; give another or 'random'");
  }
  return Status::ok();
}

Result<TuneOutcome> tune_filesystem(const std::string& path, const TuneRequest& request,
                                    const TuneOptions& options) {
  LUNFS_TRY(validate_tune_request(request));
  // O_DIRECT: heartbeats written by other hosts are seen, and nothing of ours lingers in a
  // page cache that a mount on this host would read past.
  LUNFS_ASSIGN(auto dev, FileBlockDevice::open(path, {.read_only = false, .direct = true}));
  auto claim = DeviceClaim::take(path, dev->fd(), dev->is_block_device());
  if (!claim) return error(claim.err(), claim.status().message() + "; unmount it first");
  LUNFS_ASSIGN(auto located, locate_superblock(*dev));
  if (!located.primary_damage.empty()) {
    return error(EUCLEAN, path + ": the primary superblock is damaged (" + located.primary_damage +
                              "); run fsck.lunfs -y --all-nodes-unmounted, which restores it from the backup");
  }
  TuneOutcome out;
  out.before = located.sb;
  LUNFS_TRY(ondisk::check_features(out.before, true));
  LUNFS_TRY(check_heartbeats(*dev, out.before, path, options));
  LUNFS_ASSIGN(auto dirty, find_dirty_journals(*dev, out.before));
  if (!dirty.empty()) {
    return error(EBUSY, path + ": the journal of slot " + n(dirty.front().slot) + " needs replay (" +
                            dirty.front().state + "); mount the file system once, or run fsck.lunfs -y "
                            "--all-nodes-unmounted, then tune it");
  }

  out.after = out.before;
  if (request.label) out.after.label = *request.label;
  if (request.cluster_name) out.after.cluster_name = *request.cluster_name;
  if (request.fs_name) out.after.fs_name = *request.fs_name;
  if (request.uuid) out.after.uuid = *request.uuid;

  const auto& g = out.before.geometry;
  std::optional<ondisk::Superblock> backup;
  {
    AlignedBuffer buf(g.block_size);
    if (dev->read(g.backup_sb_block * g.block_size, buf.span())) {
      if (auto b = ondisk::decode_superblock(buf.span(), g.backup_sb_block)) backup = *b;
    }
  }
  if (out.after.uuid != out.before.uuid) {
    uint64_t zeroed = 0;
    LUNFS_TRY(sweep_journals(*dev, out.before, options, &zeroed));
    out.done.push_back("journals swept: " + n(zeroed) + " obsolete record(s) of UUID " +
                       ondisk::uuid_to_string(out.before.uuid) + " zeroed");
  }
  if (!(out.after == out.before)) {
    LUNFS_TRY(write_superblock(*dev, out.after, g.sb_block));
    out.done.push_back("primary superblock written (block " + n(g.sb_block) + ")");
  }
  if (!backup || !(*backup == out.after)) {
    LUNFS_TRY(write_superblock(*dev, out.after, g.backup_sb_block));
    out.done.push_back(std::string(backup ? "" : "damaged ") + "backup superblock written (block " +
                       n(g.backup_sb_block) + ")");
  }
  return out;
}

}  // namespace lunfs

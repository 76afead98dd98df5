// Crash-point enumeration and checking.
#include "tests/crash/crash_checker.h"

#include <algorithm>
#include <cstdlib>
#include <random>
#include <set>

#include "fs/device/aligned_buffer.h"
#include "mkfs/formatter.h"
#include "tests/crash/crash_image.h"
#include "tests/support/image_builder.h"

namespace lunfs::crash {

CrashOptions CrashOptions::from_environment() {
  CrashOptions o;
  if (const char* soak = std::getenv("LUNFS_CRASH_SOAK")) {
    uint32_t f = static_cast<uint32_t>(std::max(1L, std::strtol(soak, nullptr, 10)));
    o.prefixes *= f;
    o.torn *= f;
    o.subsets *= f;
    o.recovery_crash_every = 1;
  }
  return o;
}

namespace {

constexpr uint32_t kSector = SectorLayer::kSector;

// One write of the epoch as it reached the disk: all of it, or the given sectors.
struct Piece {
  size_t write = 0;
  std::vector<uint32_t> sectors;  // empty = whole write
  bool operator<(const Piece& o) const { return std::tie(write, sectors) < std::tie(o.write, o.sectors); }
};
using Variant = std::vector<Piece>;

class EpochChecker {
 public:
  EpochChecker(const Scenario& s, const ondisk::Superblock& sb, const CrashOptions& o,
               const std::vector<std::byte>& durable, CrashStats& stats)
      : s_(s), sb_(sb), o_(o), durable_(durable), stats_(stats), rng_(o.seed) {}

  void check(const std::vector<const DeviceOp*>& writes, uint64_t acked, bool final_epoch) {
    ++epoch_;
    if (writes.empty() && !final_epoch) return;  // back-to-back flushes: same state as before
    stats_.epochs += 1;
    std::set<Variant> variants;
    const size_t n = writes.size();
    variants.insert({});
    if (final_epoch) variants.insert(prefix(n));
    for (uint32_t i = 0; i < o_.prefixes && n > 1; ++i) variants.insert(prefix(1 + rng_() % (n - 1)));
    for (uint32_t i = 0; i < o_.torn && n > 0; ++i) {
      size_t k = rng_() % n;
      uint32_t sectors = static_cast<uint32_t>(writes[k]->data.size() / kSector);
      if (sectors < 2) continue;
      Variant v = prefix(k);
      Piece p{k, {}};
      uint32_t keep = 1 + rng_() % (sectors - 1);
      for (uint32_t s = 0; s < keep; ++s) p.sectors.push_back(s);
      v.push_back(p);
      variants.insert(v);
    }
    for (uint32_t i = 0; i < o_.subsets && n > 0; ++i) {
      Variant v;
      for (size_t k = 0; k < n; ++k) {
        if (rng_() % 2) continue;
        Piece p{k, {}};
        uint32_t sectors = static_cast<uint32_t>(writes[k]->data.size() / kSector);
        if (sectors > 1 && rng_() % 4 == 0) {
          for (uint32_t s = 0; s < sectors; ++s) {
            if (rng_() % 2) p.sectors.push_back(s);
          }
        }
        v.push_back(p);
      }
      variants.insert(v);
    }
    for (const Variant& v : variants) check_point(writes, v, acked);
  }

 private:
  static Variant prefix(size_t k) {
    Variant v;
    for (size_t i = 0; i < k; ++i) v.push_back({i, {}});
    return v;
  }

  void failure(const std::string& text) {
    stats_.failures += 1;
    if (stats_.failure_texts.size() < 10) {
      stats_.failure_texts.push_back(s_.name + ": epoch " + std::to_string(epoch_) + ": " + text);
    }
  }

  void check_point(const std::vector<const DeviceOp*>& writes, const Variant& v, uint64_t acked) {
    stats_.points += 1;
    SectorLayer layer;
    for (const Piece& p : v) {
      const DeviceOp& w = *writes[p.write];
      if (p.sectors.empty()) {
        layer.put(w.offset, w.data);
        continue;
      }
      for (uint32_t s : p.sectors) {
        layer.put(w.offset + uint64_t{s} * kSector,
                  std::span<const std::byte>(w.data).subspan(uint64_t{s} * kSector, kSector));
      }
    }
    const std::string what = std::to_string(v.size()) + " of " + std::to_string(writes.size()) +
                             " writes of the epoch kept, acked " + std::to_string(acked);
    const bool crash_recovery = o_.recovery_crash_every && stats_.points % o_.recovery_crash_every == 0;

    CrashImage image(durable_, layer);
    // Recovery's writes are recorded only where a crash during recovery is simulated:
    // copying them costs more than the rest of a point.
    RecordingDevice recorded(image);
    BlockDevice& recovery_device = crash_recovery ? static_cast<BlockDevice&>(recorded) : image;
    if (auto st = s_.recover(recovery_device, sb_); !st) return failure(what + ": recovery failed: " + st.to_string());
    auto state = s_.verify(image, sb_, acked);
    if (!state) return failure(what + ": " + state.status().message());
    if (!crash_recovery) return;

    // Power lost again during recovery: keep a prefix of its writes, recover again.
    stats_.recovery_crashes += 1;
    std::vector<DeviceOp> ops = recorded.log();
    std::vector<const DeviceOp*> rw;
    for (const DeviceOp& op : ops) {
      if (op.kind == DeviceOp::Kind::kWrite) rw.push_back(&op);
    }
    SectorLayer again = layer;
    const size_t keep = rw.empty() ? 0 : rng_() % rw.size();
    for (size_t i = 0; i < keep; ++i) again.put(rw[i]->offset, rw[i]->data);
    CrashImage second(durable_, std::move(again));
    if (auto st = s_.recover(second, sb_); !st) {
      return failure(what + ", recovery interrupted after " + std::to_string(keep) +
                     " writes: second recovery failed: " + st.to_string());
    }
    auto state2 = s_.verify(second, sb_, acked);
    if (!state2) {
      return failure(what + ", recovery interrupted after " + std::to_string(keep) +
                     " writes: " + state2.status().message());
    }
    if (*state2 != *state) {
      failure(what + ": recovery interrupted after " + std::to_string(keep) + " writes reached state " +
              std::to_string(*state2) + ", uninterrupted recovery state " + std::to_string(*state));
    }
  }

  const Scenario& s_;
  const ondisk::Superblock& sb_;
  const CrashOptions& o_;
  const std::vector<std::byte>& durable_;
  CrashStats& stats_;
  std::mt19937_64 rng_;
  size_t epoch_ = 0;
};

}  // namespace

Result<CrashStats> run_crash_test(const Scenario& scenario, const CrashOptions& options) {
  auto disk = make_memory_device(64ull << 20);
  if (!scenario.disk_fill.empty()) {
    AlignedBuffer chunk(1 << 20);
    for (size_t i = 0; i < chunk.size(); ++i) chunk.data()[i] = std::byte(scenario.disk_fill[i % scenario.disk_fill.size()]);
    for (uint64_t off = 0; off < disk->size_bytes(); off += chunk.size()) LUNFS_TRY(disk->write(off, chunk.span()));
  }
  LUNFS_ASSIGN(ondisk::Superblock sb, plan_filesystem(*disk, testing::ImageBuilder::default_options()));
  LUNFS_TRY(write_filesystem(*disk, sb));
  std::vector<std::byte> durable(disk->size_bytes());
  LUNFS_TRY(disk->read(0, durable));

  RecordingDevice rec(*disk);
  LUNFS_TRY(scenario.run(rec, sb));
  const std::vector<DeviceOp> ops = rec.log();

  CrashStats stats;
  EpochChecker checker(scenario, sb, options, durable, stats);
  std::vector<const DeviceOp*> epoch;
  uint64_t acked = 0;
  for (const DeviceOp& op : ops) {
    switch (op.kind) {
      case DeviceOp::Kind::kWrite:
        epoch.push_back(&op);
        break;
      case DeviceOp::Kind::kMark:
        acked = std::max(acked, op.mark);
        break;
      case DeviceOp::Kind::kFlush:
        checker.check(epoch, acked, false);
        for (const DeviceOp* w : epoch) std::copy(w->data.begin(), w->data.end(), durable.begin() + w->offset);
        epoch.clear();
        break;
    }
  }
  checker.check(epoch, acked, true);
  return stats;
}

}  // namespace lunfs::crash

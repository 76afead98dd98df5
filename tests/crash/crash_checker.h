// The crash checker: runs a workload once on a recording device over a freshly formatted
// disk, then for many crash points builds the disk as a power loss there would leave it,
// runs recovery and asks the workload's verifier whether everything acknowledged before the
// crash is present and nothing is half-applied. Workloads are pluggable (journal-level ones,
// and file-system-level ones that mount the core and run fsck).
//
// Crash points, per flush epoch (the writes between two flushes): none of the epoch's writes
// (the previous flush boundary), prefixes in issue order, a prefix whose next write is torn
// (a prefix of its sectors), and random subsets (write caches reorder) in which a kept
// multi-sector write may itself be partial. A mark placed anywhere before the flush that
// ends the epoch counts as acknowledged at every crash point of that epoch.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "fs/device/testing/recording_device.h"
#include "fs/format/superblock.h"

namespace lunfs::crash {

struct Scenario {
  std::string name;
  // Repeated over the whole disk before mkfs: what free space holds ("stale" contents that
  // no file may ever show). Empty: zeros.
  std::string disk_fill;
  // The workload: runs against `dev` and calls dev.mark(k) once operation k (and every
  // operation before it) is acknowledged durable.
  std::function<Status(RecordingDevice& dev, const ondisk::Superblock& sb)> run;
  // Recovery after a crash (journal level: replay of the slot; file-system level: mount).
  std::function<Status(BlockDevice& image, const ondisk::Superblock& sb)> recover;
  // Checks the recovered disk given the highest acknowledged mark; returns the state it
  // found (so a crash during recovery can be compared with an uninterrupted one) or an
  // error in words.
  std::function<Result<uint64_t>(BlockDevice& image, const ondisk::Superblock& sb, uint64_t acked)>
      verify;
};

struct CrashOptions {
  uint32_t prefixes = 6;  // per epoch
  uint32_t torn = 10;
  uint32_t subsets = 8;
  uint32_t recovery_crash_every = 8;  // every Nth point also crashes recovery and re-runs it
  uint64_t seed = 1;
  // LUNFS_CRASH_SOAK=<factor> multiplies the samples per epoch (long soak runs).
  static CrashOptions from_environment();
};

struct CrashStats {
  size_t epochs = 0;
  size_t points = 0;
  size_t recovery_crashes = 0;
  size_t failures = 0;
  std::vector<std::string> failure_texts;  // the first few
};

// The disk: a 64 MiB memory device (filled with scenario.disk_fill) formatted with 2 journals of 8 MiB, 4 KiB blocks and a
// fixed UUID. Errors: the workload itself failed.
Result<CrashStats> run_crash_test(const Scenario& scenario, const CrashOptions& options);

}  // namespace lunfs::crash

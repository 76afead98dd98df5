// `lunfs tune`: changes the label, the lock table (cluster and file system names) and the
// UUID of an unmounted lunfs, in both superblocks. The order of the writes, and why a run
// killed anywhere leaves a file system that mounts and that the same command (or fsck -p)
// finishes, is in docs/admin.md ("lunfs tune").
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "fs/format/superblock.h"
#include "fs/result.h"

namespace lunfs {

struct TuneRequest {
  std::optional<std::string> label;
  std::optional<std::string> cluster_name;  // with fs_name: the lock table
  std::optional<std::string> fs_name;
  std::optional<std::array<uint8_t, 16>> uuid;
};

struct TuneOptions {
  // Called while the journals are swept after a UUID change (blocks done of total).
  std::function<void(uint64_t done, uint64_t total)> progress;
  // Said once before heartbeats are watched (a live-looking one is watched for seconds).
  std::function<void(const std::string&)> note;
};

struct TuneOutcome {
  ondisk::Superblock before;  // the primary as found
  ondisk::Superblock after;   // as written (== before when nothing changed)
  std::vector<std::string> done;  // what was written, in words
};

// Checks the request's values (EINVAL, in words, before anything is opened).
Status validate_tune_request(const TuneRequest& request);

// Refuses (nothing written) a device claimed on this host (mounted or being checked), one
// whose heartbeat is live or stale (a mount elsewhere, or one that crashed), a journal that
// needs replay, a damaged primary superblock, and unknown features.
Result<TuneOutcome> tune_filesystem(const std::string& path, const TuneRequest& request,
                                    const TuneOptions& options = {});

// A fresh random (version 4) UUID.
std::array<uint8_t, 16> random_uuid_v4();

}  // namespace lunfs

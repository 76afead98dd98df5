// fsck pass 7: statfs totals: the master statfs plus the slot deltas (pass 2) against the
// resource groups (pass 3).
#include "fsck/checker_state.h"

#include <algorithm>

namespace lunfs::fsck {

using namespace ondisk;

void Checker::check_statfs() {
  if (!statfs_valid_) return;
  bool all_rgrps = std::all_of(rgrps_.begin(), rgrps_.end(), [](const RgrpInfo& r) { return r.header_ok && r.bitmaps_ok; });
  if (!all_rgrps) return;
  uint64_t dinodes = 0;
  for (const auto& r : rgrps_) dinodes += r.header.dinodes + r.header.unlinked;
  if (statfs_free_ != static_cast<int64_t>(total_free_) || statfs_dinodes_ != static_cast<int64_t>(dinodes)) {
    statfs_mismatch_ = true;
    error("statfs: master plus slot deltas say " + std::to_string(statfs_free_) + " free blocks and " +
          std::to_string(statfs_dinodes_) + " inodes; the resource groups hold " + n(total_free_) +
          " free blocks and " + n(dinodes) + " inodes");
  }
}

}  // namespace lunfs::fsck

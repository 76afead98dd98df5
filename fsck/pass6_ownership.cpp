// fsck pass 6: block ownership: no block used twice, every block a file uses is "used" in
// its bitmap, every "used" block belongs to a file.
#include "fsck/checker_state.h"

#include <algorithm>

namespace lunfs::fsck {

using namespace ondisk;

void Checker::check_ownership() {
  const Geometry& g = report_.sb.geometry;
  std::sort(refs_.begin(), refs_.end(), [](const BlockRef& a, const BlockRef& b) { return a.start < b.start; });
  uint64_t prev_end = 0;
  const BlockRef* prev = nullptr;
  for (const BlockRef& r : refs_) {
    if (prev && r.start < prev_end) {
      error("block " + n(r.start) + " is used twice: as " + prev->what + " of inode " + n(prev->owner) +
            " and as " + r.what + " of inode " + n(r.owner));
    }
    if (r.start + r.length > prev_end) {
      prev_end = r.start + r.length;
      prev = &r;
    }
  }
  // Every referenced block must be "used" in its bitmap; every "used" block referenced.
  size_t next_ref = 0;
  for (uint32_t ri = 0; ri < rgrps_.size(); ++ri) {
    step(ri);
    const RgrpInfo& info = rgrps_[ri];
    RgrpLocation loc = g.rgrp(ri);
    uint64_t lo = loc.first_data, hi = loc.first_data + loc.data_blocks;
    while (next_ref < refs_.size() && refs_[next_ref].start < lo) ++next_ref;
    if (!info.bitmaps_ok) {
      while (next_ref < refs_.size() && refs_[next_ref].start < hi) ++next_ref;
      continue;
    }
    std::vector<bool> referenced(info.bits.empty() ? 0 : loc.data_blocks);
    for (; next_ref < refs_.size() && refs_[next_ref].start < hi; ++next_ref) {
      const BlockRef& r = refs_[next_ref];
      if (info.bits.empty()) {
        error("inode " + n(r.owner) + ": " + r.what + " at block " + n(r.start) +
              " lies in resource group " + n(ri) + ", whose bitmap says everything is free");
        continue;
      }
      for (uint64_t b = r.start; b < r.start + r.length && b < hi; ++b) {
        uint32_t j = static_cast<uint32_t>(b - lo);
        referenced[j] = true;
        if (info.state(j) != BlockState::kUsed) {
          error("inode " + n(r.owner) + ": " + r.what + " block " + n(b) + " is marked " +
                block_state_name(info.state(j)) + " in the bitmap");
          break;
        }
      }
    }
    if (info.bits.empty()) continue;
    uint64_t leaked = 0, first_leak = 0;
    for (uint32_t j = 0; j < loc.data_blocks; ++j) {
      BlockState s = info.state(j);
      if (s != BlockState::kFree) ++report_.used_blocks;
      if (s == BlockState::kUsed && !referenced[j]) {
        if (leaked++ == 0) first_leak = lo + j;
      }
    }
    if (leaked) {
      error("resource group " + n(ri) + ": " + n(leaked) + " block(s) marked used belong to no file (first: block " +
            n(first_leak) + ")");
    }
  }
}

}  // namespace lunfs::fsck

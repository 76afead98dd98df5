// fsck pass 3: resource group headers and their bitmaps, the header counts against the
// bitmap counts.
#include "fsck/checker_state.h"

#include "fs/device/parallel_io.h"
#include "fs/format/rgrp_format.h"

namespace lunfs::fsck {

using namespace ondisk;

void Checker::check_rgrps() {
  const Geometry& g = report_.sb.geometry;
  const uint64_t seed = report_.sb.csum_seed;
  rgrps_.resize(g.rgrp_count);
  // Headers are read in batches, many I/Os in flight; 1024 headers of 64 KiB at most
  // bound the memory.
  constexpr uint32_t kBatch = 1024;
  AlignedBuffer headers(uint64_t{std::min(kBatch, g.rgrp_count)} * bs()), bitmaps;
  std::vector<Status> read_status(kBatch);
  for (uint32_t i = 0; i < g.rgrp_count; ++i) {
    step(i);
    const uint32_t slot = i % kBatch;
    if (slot == 0) {
      uint32_t batch = std::min(kBatch, g.rgrp_count - i);
      (void)parallel_for(batch, [&](size_t k) {
        read_status[k] = dev_.read(g.rgrp(i + static_cast<uint32_t>(k)).header * bs(),
                                   headers.span().subspan(k * bs(), bs()));
        return Status::ok();
      });
    }
    RgrpLocation loc = g.rgrp(i);
    RgrpInfo& info = rgrps_[i];
    const std::string where = "resource group " + n(i);
    if (!read_status[slot]) {
      error(where + ": cannot read block " + n(loc.header) + ": " + read_status[slot].to_string());
      continue;
    }
    auto header = decode_rgrp_header(headers.span().subspan(uint64_t{slot} * bs(), bs()), loc.header, seed, loc);
    if (!header) {
      // The bitmaps' places follow from the geometry: read them anyway, so that the inodes
      // they mark are still checked and the repair can rebuild the header from them.
      error(where + ": " + header.status().message() + "; its counts cannot be checked");
    } else {
      info.header_ok = true;
      info.header = *header;
    }
    if (header && header->flags & kRgrpBitmapUninit) {
      info.bitmaps_ok = true;
      total_free_ += header->free_blocks;
      continue;
    }
    if (auto st = read_blocks(loc.header + 1, loc.bitmap_blocks, bitmaps); !st) {
      error(where + ": cannot read its bitmaps: " + st.to_string());
      continue;
    }
    const uint32_t per = Geometry::blocks_per_bitmap(bs());
    info.bits.assign((uint64_t{loc.bitmap_blocks} * per) / 4, 0);
    bool ok = true;
    for (uint32_t b = 0; b < loc.bitmap_blocks; ++b) {
      uint32_t covered = std::min<uint32_t>(per, loc.data_blocks - b * per);
      auto bm = decode_bitmap(bitmaps.span().subspan(uint64_t{b} * bs(), bs()), loc.header + 1 + b,
                              seed, loc, b, covered);
      if (!bm) {
        error(where + ": " + bm.status().message());
        ok = false;
        continue;
      }
      std::copy(bm->bits.begin(), bm->bits.end(), info.bits.begin() + uint64_t{b} * (per / 4));
    }
    if (!ok) continue;
    info.bitmaps_ok = true;
    if (!header) continue;
    uint64_t counts[4] = {};
    for (uint32_t j = 0; j < loc.data_blocks; ++j) ++counts[static_cast<int>(info.state(j))];
    struct {
      const char* name;
      uint64_t header;
      uint64_t bitmap;
    } checks[] = {{"free", header->free_blocks, counts[0]},
                  {"inode", header->dinodes, counts[3]},
                  {"unlinked", header->unlinked, counts[2]}};
    for (const auto& c : checks) {
      if (c.header != c.bitmap) {
        error(where + ": header counts " + n(c.header) + " " + c.name + " blocks, the bitmap " + n(c.bitmap));
      }
    }
    total_free_ += counts[0];
  }
}

}  // namespace lunfs::fsck

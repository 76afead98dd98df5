// fsck pass 2: node slots: slot headers and their journals, heartbeats, statfs deltas and
// the master statfs block (whose sums pass 7 compares).
#include "fsck/checker_state.h"

#include "fs/format/slot_format.h"
#include "journal/check.h"

namespace lunfs::fsck {

using namespace ondisk;

void Checker::check_slots() {
  const Geometry& g = report_.sb.geometry;
  const uint64_t seed = report_.sb.csum_seed;
  const uint32_t slots = g.journal_count;
  slot_header_bad_.assign(slots, false);
  journal_bad_.assign(slots, false);
  heartbeat_bad_.assign(slots, false);
  statfs_block_bad_.assign(slots + 1, false);
  AlignedBuffer area;
  if (auto st = read_blocks(g.slot_header_start, 3 * uint64_t{slots} + 1, area); !st) {
    error("node slot area: cannot read: " + st.to_string());
    statfs_valid_ = false;
    return;
  }
  auto block = [&](uint64_t i) { return std::span<const std::byte>(area.span().subspan(i * bs(), bs())); };
  for (uint32_t s = 0; s < slots; ++s) {
    auto header = decode_slot_header(block(s), g.slot_header(s), seed, g);
    if (!header) {
      slot_header_bad_[s] = true;
      error("slot " + n(s) + ": " + header.status().message());
    }
    if (header) {  // dirty (needs replay) or damaged journals, in words
      for (const auto& f : journal::check_journal(dev_, report_.sb, s).findings) {
        if (f.error) journal_bad_[s] = true;
        f.error ? error("slot " + n(s) + ": " + f.text) : warning("slot " + n(s) + ": " + f.text);
      }
    }
    auto hb = decode_heartbeat(block(slots + s), g.heartbeat(s), seed, g);
    if (!hb) {
      heartbeat_bad_[s] = true;
      error("slot " + n(s) + ": " + hb.status().message());
    } else if (hb->state == HeartbeatState::kLive) {
      warning("slot " + n(s) + ": heartbeat says node " + n(hb->node) +
              " has the file system mounted (or died with it mounted); a check of a mounted "
              "file system can report changes in flight as errors");
    }
    auto delta = decode_statfs(block(2 * slots + s), g.statfs_delta(s), seed, g);
    if (!delta) {
      statfs_block_bad_[s] = true;
      error("slot " + n(s) + ": " + delta.status().message());
      statfs_valid_ = false;
    } else {
      statfs_free_ += delta->free_blocks;
      statfs_dinodes_ += delta->dinodes;
    }
  }
  auto master = decode_statfs(block(3 * uint64_t{slots}), g.statfs_block, seed, g);
  if (!master) {
    statfs_block_bad_[slots] = true;
    error("master statfs: " + master.status().message());
    statfs_valid_ = false;
  } else {
    statfs_free_ += master->free_blocks;
    statfs_dinodes_ += master->dinodes;
  }
}

}  // namespace lunfs::fsck

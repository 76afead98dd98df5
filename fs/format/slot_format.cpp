// Slot header, heartbeat and statfs codecs. Offsets: docs/format.md, "Node slots".
#include "fs/format/slot_format.h"

#include <algorithm>
#include <cstring>

namespace lunfs::ondisk {

namespace {
void clear(std::span<std::byte> b) { std::fill(b.begin(), b.end(), std::byte{0}); }
}  // namespace

void encode_slot_header(const SlotHeader& s, std::span<std::byte> b, uint64_t blocknr,
                        uint64_t seed) {
  clear(b);
  put<uint32_t>(b, 32, s.slot);
  put<uint32_t>(b, 36, s.flags);
  put<uint32_t>(b, 40, s.owner_node);
  put<uint32_t>(b, 44, s.tail_block);
  put<uint64_t>(b, 48, s.mount_generation);
  put<uint64_t>(b, 56, s.tail_sequence);
  seal_block(b, BlockType::kSlotHeader, blocknr, 0, seed);
}

Result<SlotHeader> decode_slot_header(std::span<const std::byte> b, uint64_t blocknr,
                                      uint64_t seed, const Geometry& g) {
  LUNFS_TRY(verify_block(b, BlockType::kSlotHeader, blocknr, seed));
  SlotHeader s;
  s.slot = get<uint32_t>(b, 32);
  s.flags = get<uint32_t>(b, 36);
  s.owner_node = get<uint32_t>(b, 40);
  s.tail_block = get<uint32_t>(b, 44);
  s.mount_generation = get<uint64_t>(b, 48);
  s.tail_sequence = get<uint64_t>(b, 56);
  if (s.slot >= g.journal_count || g.slot_header(s.slot) != blocknr) {
    return corrupt(BlockType::kSlotHeader, blocknr, "names slot " + std::to_string(s.slot));
  }
  if (s.flags & ~kSlotMounted) return corrupt(BlockType::kSlotHeader, blocknr, "unknown flags");
  if (s.tail_block >= g.journal_blocks) {
    return corrupt(BlockType::kSlotHeader, blocknr, "journal tail beyond the journal's end");
  }
  if (s.tail_sequence == 0) return corrupt(BlockType::kSlotHeader, blocknr, "tail sequence 0");
  return s;
}

void encode_heartbeat(const Heartbeat& h, std::span<std::byte> b, uint64_t blocknr, uint64_t seed) {
  clear(b);
  put<uint32_t>(b, 32, h.slot);
  put<uint32_t>(b, 36, h.node);
  put<uint32_t>(b, 40, static_cast<uint32_t>(h.state));
  put<uint32_t>(b, 44, h.lease_ms);
  put<uint64_t>(b, 48, h.counter);
  put<uint64_t>(b, 56, h.mount_generation);
  put<int64_t>(b, 64, h.timestamp_ns);
  put<uint32_t>(b, 72, h.interval_ms);
  put<uint32_t>(b, 76, h.pid);
  put<uint64_t>(b, 80, h.mount_id);
  std::memcpy(b.data() + 88, h.host.data(), std::min(h.host.size(), kHeartbeatHostMax));
  seal_block(b, BlockType::kHeartbeat, blocknr, 0, seed);
}

Result<Heartbeat> decode_heartbeat(std::span<const std::byte> b, uint64_t blocknr, uint64_t seed,
                                   const Geometry& g) {
  LUNFS_TRY(verify_block(b, BlockType::kHeartbeat, blocknr, seed));
  Heartbeat h;
  h.slot = get<uint32_t>(b, 32);
  h.node = get<uint32_t>(b, 36);
  uint32_t state = get<uint32_t>(b, 40);
  h.lease_ms = get<uint32_t>(b, 44);
  h.counter = get<uint64_t>(b, 48);
  h.mount_generation = get<uint64_t>(b, 56);
  h.timestamp_ns = get<int64_t>(b, 64);
  h.interval_ms = get<uint32_t>(b, 72);
  h.pid = get<uint32_t>(b, 76);
  h.mount_id = get<uint64_t>(b, 80);
  const auto* host = reinterpret_cast<const char*>(b.data() + 88);
  if (host[kHeartbeatHostMax] != '\0') return corrupt(BlockType::kHeartbeat, blocknr, "host name not terminated");
  h.host.assign(host, strnlen(host, kHeartbeatHostMax));
  if (h.slot >= g.journal_count || g.heartbeat(h.slot) != blocknr) {
    return corrupt(BlockType::kHeartbeat, blocknr, "names slot " + std::to_string(h.slot));
  }
  if (state > static_cast<uint32_t>(HeartbeatState::kLive)) {
    return corrupt(BlockType::kHeartbeat, blocknr, "unknown state " + std::to_string(state));
  }
  h.state = static_cast<HeartbeatState>(state);
  return h;
}

void encode_statfs(const Statfs& s, std::span<std::byte> b, uint64_t blocknr, uint64_t seed) {
  clear(b);
  put<uint32_t>(b, 32, s.slot);
  put<int64_t>(b, 40, s.free_blocks);
  put<int64_t>(b, 48, s.dinodes);
  seal_block(b, s.slot == Statfs::kNoSlot ? BlockType::kStatfs : BlockType::kStatfsDelta, blocknr,
             0, seed);
}

Result<Statfs> decode_statfs(std::span<const std::byte> b, uint64_t blocknr, uint64_t seed,
                             const Geometry& g) {
  bool master = blocknr == g.statfs_block;
  BlockType type = master ? BlockType::kStatfs : BlockType::kStatfsDelta;
  LUNFS_TRY(verify_block(b, type, blocknr, seed));
  Statfs s;
  s.slot = get<uint32_t>(b, 32);
  s.free_blocks = get<int64_t>(b, 40);
  s.dinodes = get<int64_t>(b, 48);
  if (master ? s.slot != Statfs::kNoSlot
             : (s.slot >= g.journal_count || g.statfs_delta(s.slot) != blocknr)) {
    return corrupt(type, blocknr, "names slot " + std::to_string(s.slot));
  }
  auto total = static_cast<int64_t>(g.data_blocks_total());
  // Only master + Σ deltas is a count of the file system (fsck checks it against the
  // resource groups). The master alone leaves [0, total] while other slots hold unfolded
  // changes: a node that frees, and folds, blocks that a node which died (or has not
  // folded yet) allocated pushes it above the total. Each delta is within ±total, so the
  // master is within ±(slots + 1) × total.
  const int64_t bound = (static_cast<int64_t>(g.journal_count) + 1) * total;
  if (master && (s.free_blocks < -bound || s.free_blocks > bound || s.dinodes < -bound || s.dinodes > bound)) {
    return corrupt(type, blocknr, "counts outside what the file system's slots can hold");
  }
  if (!master && (s.free_blocks < -total || s.free_blocks > total || s.dinodes < -total ||
                  s.dinodes > total)) {
    return corrupt(type, blocknr, "change larger than the file system");
  }
  return s;
}

}  // namespace lunfs::ondisk

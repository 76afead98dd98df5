// Per-node-slot structures: the slot header (who owns the journal, where its tail is), the
// heartbeat block each mounted node renews (disk lease), and the statfs blocks (one master,
// one delta per slot so nodes account free space without contending).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "fs/format/ondisk.h"
#include "fs/format/superblock.h"

namespace lunfs::ondisk {

struct SlotHeader {
  uint32_t slot = 0;
  uint32_t flags = 0;         // kSlotMounted while a node has the slot
  uint32_t owner_node = 0;    // Corosync node id of the last mounter; 0 = never mounted
  uint64_t mount_generation = 0;
  uint64_t tail_sequence = 1;  // journal replay starts at this sequence...
  uint32_t tail_block = 0;     // ...at this block offset within the journal
  bool operator==(const SlotHeader&) const = default;
};
inline constexpr uint32_t kSlotMounted = 1;

enum class HeartbeatState : uint32_t { kFree = 0, kLive = 1 };

// A heartbeat record (fs/core/heartbeat.h renews it). Fields from `interval_ms` on live in
// bytes that format version 1 reserved (zero): an image written before them reads as
// interval 0, pid 0, mount id 0 and no host name, and readers fall back to their own
// interval for such a block.
struct Heartbeat {
  uint32_t slot = 0;
  uint32_t node = 0;
  HeartbeatState state = HeartbeatState::kFree;  // kFree: clean unmount, or never mounted
  uint32_t lease_ms = 0;  // the writer renews at least this often while it is alive
  uint64_t counter = 0;   // incremented at every renewal
  uint64_t mount_generation = 0;
  int64_t timestamp_ns = 0;  // writer's wall clock, informative only
  uint32_t interval_ms = 0;  // the writer's renewal period
  uint32_t pid = 0;          // the writing daemon's process id, informative
  uint64_t mount_id = 0;     // random per mount: tells two mounts of one host apart
  std::string host;          // the writer's host name, at most kHeartbeatHostMax bytes
  bool operator==(const Heartbeat&) const = default;
};
inline constexpr size_t kHeartbeatHostMax = 63;

struct Statfs {
  uint32_t slot = kNoSlot;  // kNoSlot for the master block
  int64_t free_blocks = 0;  // absolute in the master, a signed change in a delta
  int64_t dinodes = 0;
  bool operator==(const Statfs&) const = default;
  static constexpr uint32_t kNoSlot = 0xFFFFFFFF;
};

void encode_slot_header(const SlotHeader& s, std::span<std::byte> b, uint64_t blocknr,
                        uint64_t seed);
Result<SlotHeader> decode_slot_header(std::span<const std::byte> b, uint64_t blocknr,
                                      uint64_t seed, const Geometry& g);
void encode_heartbeat(const Heartbeat& h, std::span<std::byte> b, uint64_t blocknr, uint64_t seed);
Result<Heartbeat> decode_heartbeat(std::span<const std::byte> b, uint64_t blocknr, uint64_t seed,
                                   const Geometry& g);
// The master block when s.slot == kNoSlot, a delta otherwise.
void encode_statfs(const Statfs& s, std::span<std::byte> b, uint64_t blocknr, uint64_t seed);
Result<Statfs> decode_statfs(std::span<const std::byte> b, uint64_t blocknr, uint64_t seed,
                             const Geometry& g);

}  // namespace lunfs::ondisk

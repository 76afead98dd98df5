// `lunfs status`: what an operator asks of a lunfs: who has which slot (owner node, the
// heartbeat and its age), how full the resource groups are, the glocks a mount on this host
// holds (asked of mount.lunfs over its control socket, dlm/control.h) and any recovery in
// progress. Read-only: the slot area and the rgrp headers are read with O_DIRECT, so a
// mounted file system (here or on another host) can be looked at. Output as text or JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fs/format/superblock.h"
#include "fs/result.h"

namespace lunfs {

struct SlotStatus {
  uint32_t slot = 0;
  std::string header_damage;  // empty: the slot header decoded
  bool mounted_flag = false;  // the header's "a node holds the slot"
  uint32_t owner_node = 0;    // the slot header's owner (no mount writes it yet: the heartbeat names the owner)
  uint64_t mount_generation = 0;
  std::string heartbeat_damage;  // empty: the heartbeat decoded
  bool live = false;             // the heartbeat says a mount renews it
  uint32_t node = 0;
  std::string host;
  uint32_t pid = 0;
  uint64_t mount_id = 0;
  uint64_t counter = 0;
  uint32_t interval_ms = 0;
  // Now minus the record's timestamp: the writer's wall clock against this host's, so
  // only as good as their agreement; nullopt when the block never held a time.
  std::optional<double> age_s;
  // A live heartbeat whose age exceeds its lease and the margin: probably a crashed mount.
  bool overdue = false;
};

struct RgrpStatus {
  uint32_t index = 0;
  std::string damage;  // empty: the header decoded
  uint32_t data_blocks = 0;
  uint32_t free_blocks = 0;
  uint32_t dinodes = 0;
};

struct StatusReport {
  std::string device;
  std::string mountpoint;  // empty: not mounted on this host
  ondisk::Superblock sb;
  std::vector<SlotStatus> slots;
  std::vector<RgrpStatus> rgrps;
  uint64_t data_blocks = 0;
  uint64_t free_blocks = 0;  // sum over the rgrp headers on disk
  uint64_t dinodes = 0;
  // The glocks the mount on this host holds, one line each; nullopt with glocks_note
  // saying why there is no answer (not mounted here, no control socket).
  std::optional<std::vector<std::string>> glocks;
  std::string glocks_note;
  // A cluster mount on this host: the lock space's members (Corosync node ids) and, in
  // words, each dead node whose recovery is not finished (fuse/node_recovery.h). Empty
  // members: not a cluster mount on this host, or it did not answer.
  std::vector<uint32_t> members;
  std::vector<std::string> recovery;
};

// The lunfs mounts on this host: pairs of (mount point, device).
std::vector<std::pair<std::string, std::string>> lunfs_mounts();

// `target` is a mount point of a lunfs on this host or its device (block device or file).
Result<StatusReport> gather_status(const std::string& target);

std::string status_text(const StatusReport& r);
std::string status_json(const StatusReport& r);

}  // namespace lunfs

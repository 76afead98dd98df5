// Command line of mount.lunfs: "mount.lunfs DEVICE MOUNTPOINT [-o opts] [-f]", as mount(8)
// calls it for "mount -t lunfs" and /etc/fstab entries. lunfs options are consumed here;
// generic mount options that FUSE understands are passed through, the rest are refused.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "fs/result.h"

namespace lunfs {

struct MountCommand {
  std::string device;
  std::string mountpoint;
  std::string lockproto = "nolock";
  bool read_only = false;
  bool noatime = false;
  bool debug = false;
  bool foreground = false;
  unsigned slot = 0;
  bool slot_given = false;  // slot=N: a cluster mount otherwise takes the lowest free slot
  unsigned threads = 10;
  // commit=SECONDS: the journal's timer commit, what metadata nobody fsynced may lose at
  // most. 1..kMaxCommitSeconds; default 5.
  std::chrono::seconds commit_interval{5};
  // heartbeat=SECONDS: how often the slot's disk heartbeat is renewed, 1..kMaxHeartbeatSeconds;
  // default 5, and 1 on cluster mounts (main.cpp), where the survivors of a dead node wait
  // out its lease (2 intervals + 1 s, fs/core/heartbeat.h) before they recover it.
  std::chrono::seconds heartbeat_interval{5};
  bool heartbeat_given = false;
  // heartbeat_force: take a damaged heartbeat block for a stale one (watch it, then take
  // the slot over if nobody rewrites it) instead of refusing the mount.
  bool heartbeat_force = false;
  // logfile=PATH: the background daemon's messages (withdraws, recoveries, lost
  // heartbeats), each line timestamped, appended to PATH besides syslog (fuse/daemon_log.h).
  std::string logfile;
  // fence_agent=PATH: a fence_* agent (or a wrapper around one) that the node recovering
  // a dead node runs first (fuse/fence_agent.h); cluster mounts only.
  std::string fence_agent;
  // write_log=PATH: a line per write and flush that reached the LUN, with times
  // (fs/device/write_log_device.h); for tests and diagnosis, it costs a syscall per write.
  std::string write_log;
  std::vector<std::string> fuse_options;  // passed to the kernel mount
};

inline constexpr unsigned kMaxCommitSeconds = 3600;
inline constexpr unsigned kMaxHeartbeatSeconds = 300;

Result<MountCommand> parse_mount_command(const std::vector<std::string>& args);
std::string mount_usage();

}  // namespace lunfs

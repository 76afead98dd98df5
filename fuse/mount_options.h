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
  unsigned threads = 10;
  // commit=SECONDS: the journal's timer commit, what metadata nobody fsynced may lose at
  // most. 1..kMaxCommitSeconds; default 5.
  std::chrono::seconds commit_interval{5};
  std::vector<std::string> fuse_options;  // passed to the kernel mount
};

inline constexpr unsigned kMaxCommitSeconds = 3600;

Result<MountCommand> parse_mount_command(const std::vector<std::string>& args);
std::string mount_usage();

}  // namespace lunfs

// mount.lunfs command-line parsing; see mount_options.h.
#include "fuse/mount_options.h"

#include <sstream>

namespace lunfs {

std::string mount_usage() {
  return "usage: mount.lunfs DEVICE MOUNTPOINT [-o lockproto=nolock|corosync,ro,noatime,debug,"
         "slot=N,threads=N,commit=SECONDS,"
         "heartbeat=SECONDS,heartbeat_force,logfile=PATH,fence_agent=PATH,write_log=PATH] [-f]\n";
}

namespace {

// The whole value must be a decimal number: std::stoul would take "5s" as 5 and "-1" as a
// huge number.
Result<std::chrono::seconds> parse_seconds(const std::string& key, const std::string& val, unsigned max) {
  const std::string range = key + "= takes whole seconds from 1 to " + std::to_string(max);
  if (val.empty() || val.size() > 9 || val.find_first_not_of("0123456789") != std::string::npos) {
    return error(EINVAL, range + ", not '" + val + "'");
  }
  const unsigned long v = std::stoul(val);
  if (v < 1 || v > max) return error(EINVAL, range + ", not " + val);
  return std::chrono::seconds(v);
}

}  // namespace

Result<MountCommand> parse_mount_command(const std::vector<std::string>& args) {
  MountCommand c;
  std::vector<std::string> positional;
  std::vector<std::string> opts;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-o") {
      if (i + 1 >= args.size()) return error(EINVAL, "-o needs an argument");
      opts.push_back(args[++i]);
    } else if (a.rfind("-o", 0) == 0 && a.size() > 2) {
      opts.push_back(a.substr(2));
    } else if (a == "-f") {
      c.foreground = true;
    } else if (a == "-n" || a == "-s" || a == "-v") {
      // mount(8) helper flags: no mtab, sloppy, verbose. Nothing to do.
    } else if (!a.empty() && a[0] == '-') {
      return error(EINVAL, "unknown option " + a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2) return error(EINVAL, "need a DEVICE and a MOUNTPOINT");
  c.device = positional[0];
  c.mountpoint = positional[1];
  for (const auto& group : opts) {
    std::stringstream ss(group);
    std::string o;
    while (std::getline(ss, o, ',')) {
      if (o.empty()) continue;
      auto eq = o.find('=');
      std::string key = o.substr(0, eq), val = eq == std::string::npos ? "" : o.substr(eq + 1);
      if (key == "lockproto") {
        if (val != "nolock" && val != "corosync") return error(EINVAL, "lockproto must be nolock or corosync");
        c.lockproto = val;
      } else if (key == "ro") {
        c.read_only = true;
      } else if (key == "rw") {
        c.read_only = false;
      } else if (key == "noatime") {
        c.noatime = true;
      } else if (key == "relatime" || key == "defaults" || key == "auto" || key == "noauto" || key == "nofail" ||
                 key == "_netdev" || key == "async" || key == "nouser" || key == "exec" || key == "dev" ||
                 key == "suid" || key == "comment" || key.rfind("x-", 0) == 0 || key.rfind("X-", 0) == 0) {
        // relatime is the default; the others are mount(8)'s, not ours: x-* (such as the
        // x-systemd.after=corosync.service of docs/admin.md's fstab line) are for userspace,
        // and libmount passes them to helpers too.
      } else if (key == "debug") {
        c.debug = true;
      } else if (key == "slot" || key == "threads") {
        try {
          unsigned v = static_cast<unsigned>(std::stoul(val));
          (key == "slot" ? c.slot : c.threads) = v;
          if (key == "slot") c.slot_given = true;
        } catch (...) {
          return error(EINVAL, key + " needs a number");
        }
        if (key == "threads" && (c.threads < 1 || c.threads > 256)) return error(EINVAL, "threads must be 1..256");
      } else if (key == "commit") {
        LUNFS_ASSIGN(c.commit_interval, parse_seconds(key, val, kMaxCommitSeconds));
      } else if (key == "heartbeat") {
        LUNFS_ASSIGN(c.heartbeat_interval, parse_seconds(key, val, kMaxHeartbeatSeconds));
        c.heartbeat_given = true;
      } else if (key == "heartbeat_force") {
        c.heartbeat_force = true;
      } else if (key == "fence_agent") {
        if (val.empty() || val[0] != '/') return error(EINVAL, "fence_agent= needs an absolute path");
        c.fence_agent = val;
      } else if (key == "write_log") {
        if (val.empty() || val[0] != '/') return error(EINVAL, "write_log= needs an absolute path (the daemon runs in /)");
        c.write_log = val;
      } else if (key == "logfile") {
        if (val.empty() || val[0] != '/') return error(EINVAL, "logfile= needs an absolute path (the daemon runs in /)");
        c.logfile = val;
      } else if (key == "nosuid" || key == "nodev" || key == "noexec" || key == "allow_other" ||
                 key == "default_permissions") {
        c.fuse_options.push_back(o);
      } else {
        return error(EINVAL, "unknown mount option '" + o + "'");
      }
    }
  }
  if (!c.logfile.empty() && c.foreground) {
    return error(EINVAL, "logfile= is for background mounts: with -f the messages stay on standard error");
  }
  if (!c.fence_agent.empty() && c.lockproto != "corosync") {
    return error(EINVAL, "fence_agent= is for cluster mounts (lockproto=corosync)");
  }
  return c;
}

}  // namespace lunfs

// Where a background mount.lunfs's messages go. Once the mount is up the daemon has no
// terminal, yet what it says then matters most to an admin: a withdraw, a lost heartbeat,
// the recovery of a dead node. DaemonLog takes over stderr with a pipe and forwards each
// line to syslog (facility daemon, ident mount.lunfs: the journal on a systemd host) and,
// with -o logfile=PATH, appends it to that file with a UTC timestamp to the millisecond
// (what the recovery benchmark reads its phases from).
#pragma once

#include <string>
#include <thread>

namespace lunfs {

class DaemonLog {
 public:
  // Redirects fd 2. An unopenable logfile is said on the old stderr and left out.
  explicit DaemonLog(const std::string& logfile);
  // Forwards what is still in the pipe, then points fd 2 at /dev/null.
  ~DaemonLog();
  DaemonLog(const DaemonLog&) = delete;
  DaemonLog& operator=(const DaemonLog&) = delete;

 private:
  void forward(int from);
  int file_ = -1;
  std::thread thread_;
};

}  // namespace lunfs

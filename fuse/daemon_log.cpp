// DaemonLog; see daemon_log.h.
#include "fuse/daemon_log.h"

#include <fcntl.h>
#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace lunfs {

namespace {

std::string utc_now() {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  tm t{};
  gmtime_r(&tv.tv_sec, &t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                t.tm_hour, t.tm_min, t.tm_sec, static_cast<long>(tv.tv_usec / 1000));
  return buf;
}

}  // namespace

DaemonLog::DaemonLog(const std::string& logfile) {
  if (!logfile.empty()) {
    file_ = ::open(logfile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (file_ < 0) std::fprintf(stderr, "mount.lunfs: logfile %s: %s\n", logfile.c_str(), std::strerror(errno));
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return;
  std::fflush(stderr);
  dup2(p[1], 2);  // the duplicate is not close-on-exec, like any stderr
  close(p[1]);
  openlog("mount.lunfs", LOG_PID, LOG_DAEMON);
  thread_ = std::thread([this, from = p[0]] { forward(from); });
}

DaemonLog::~DaemonLog() {
  std::fflush(stderr);
  if (int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC); null >= 0) {
    dup2(null, 2);  // the pipe's last write end: the thread reads to its end and stops
    close(null);
  }
  if (thread_.joinable()) thread_.join();
  if (file_ >= 0) close(file_);
  closelog();
}

void DaemonLog::forward(int from) {
  std::string pending;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(from, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buf, static_cast<size_t>(n));
    for (size_t nl; (nl = pending.find('\n')) != std::string::npos; pending.erase(0, nl + 1)) {
      std::string line = pending.substr(0, nl);
      if (line.rfind("mount.lunfs: ", 0) == 0) line.erase(0, 13);  // syslog names us already
      syslog(LOG_NOTICE, "%s", line.c_str());
      if (file_ >= 0) {
        const std::string stamped = utc_now() + " " + line + "\n";
        (void)!write(file_, stamped.data(), stamped.size());
      }
    }
  }
  close(from);
}

}  // namespace lunfs

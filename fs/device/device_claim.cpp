// DeviceClaim: flock(LOCK_EX | LOCK_NB), and O_EXCL for block devices. /proc/locks,
// /proc/PID and mountinfo only serve the refusal's wording.
#include "fs/device/device_claim.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace lunfs {

namespace {

std::string resolved(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) ? std::string(buf) : path;
}

std::string first_line(const std::string& file) {
  std::ifstream f(file);
  std::string line;
  std::getline(f, line);
  return line;
}

// The slot=N option of a mount.lunfs command line (NUL-separated), "0" when absent.
std::string slot_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/cmdline");
  std::string arg, slot = "0";
  bool options_next = false;
  while (std::getline(f, arg, '\0')) {
    if (options_next || arg.rfind("-o", 0) == 0) {
      std::stringstream opts(options_next ? arg : arg.substr(2));
      std::string o;
      while (std::getline(opts, o, ',')) {
        if (o.rfind("slot=", 0) == 0) slot = o.substr(5);
      }
    }
    options_next = arg == "-o";
  }
  return slot;
}

// Pids holding a flock on the inode behind `fd`, from /proc/locks lines such as
// "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (device numbers in hex).
std::vector<pid_t> flock_holders(int fd) {
  std::vector<pid_t> out;
  struct stat st;
  if (fstat(fd, &st) != 0) return out;
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    std::istringstream fields(line);
    std::string id, kind, mode, access, where;
    long pid = 0;
    fields >> id >> kind;
    if (kind == "->" || kind != "FLOCK") continue;  // "->" marks a waiter
    fields >> mode >> access >> pid >> where;
    unsigned maj = 0, min = 0;
    unsigned long long ino = 0;
    if (std::sscanf(where.c_str(), "%x:%x:%llu", &maj, &min, &ino) != 3) continue;
    if (makedev(maj, min) == st.st_dev && ino == st.st_ino && pid > 0) out.push_back(static_cast<pid_t>(pid));
  }
  return out;
}

}  // namespace

std::vector<std::string> lunfs_mounts_of(const std::string& path, pid_t seen_by) {
  std::vector<std::string> out;
  const std::string want = resolved(path);
  std::ifstream info(seen_by ? "/proc/" + std::to_string(seen_by) + "/mountinfo" : "/proc/self/mountinfo");
  std::string line;
  while (std::getline(info, line)) {
    // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
    std::istringstream fields(line);
    std::string id, parent, devno, root, mountpoint, word, fstype, source;
    fields >> id >> parent >> devno >> root >> mountpoint;
    while (fields >> word && word != "-") {
    }
    fields >> fstype >> source;
    if (fstype != "fuse.lunfs") continue;
    if (source == path || resolved(source) == want) out.push_back(mountpoint);
  }
  return out;
}

std::string describe_claim_holders(const std::string& path, int fd) {
  std::vector<std::string> parts;
  for (pid_t pid : flock_holders(fd)) {
    const std::string comm = first_line("/proc/" + std::to_string(pid) + "/comm");
    if (comm.empty()) continue;  // exited: the lock went on with a forked child
    std::string part = comm + " (pid " + std::to_string(pid);
    if (comm == "mount.lunfs") part += ", slot " + slot_of(pid);
    parts.push_back(part + ")");
  }
  std::vector<std::string> mount_points = lunfs_mounts_of(path);
  if (mount_points.empty()) {  // mounted in another mount namespace: ask the daemons'
    for (pid_t pid : flock_holders(fd)) {
      for (auto& m : lunfs_mounts_of(path, pid)) {
        if (std::find(mount_points.begin(), mount_points.end(), m) == mount_points.end()) mount_points.push_back(m);
      }
    }
  }
  std::string mounts;
  for (const auto& m : mount_points) mounts += (mounts.empty() ? "" : ", ") + m;
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
  if (!mounts.empty()) out += (out.empty() ? "mount.lunfs" : "") + std::string(" mounted on ") + mounts;
  return out.empty() ? "another mount.lunfs, fsck.lunfs or mkfs.lunfs" : out;
}

namespace {

// The flock, or EBUSY naming the holders. `umount` returns before a daemon has finished
// (it still writes the journal home and marks its heartbeat clean), so `umount; mount`
// finds the claim held while no lunfs mount of the LUN is left: then it waits for that
// daemon to finish, up to kFinishingHolderWait, instead of refusing a remount an admin
// (or a script) rightly expects to work. An fsck or mkfs holding it is refused at once.
constexpr auto kFinishingHolderWait = std::chrono::seconds(60);

// Whether the holders are only mount.lunfs daemons (or exited parents of one) whose
// mounts are gone. A daemon's mount is looked up in its own mount namespace too: a mount
// made in another namespace (a container, or the test harness's nodes) is invisible in
// ours, and would otherwise look like a daemon finishing its unmount.
bool held_by_finishing_daemon(const std::string& path, int fd) {
  if (!lunfs_mounts_of(path).empty()) return false;
  for (pid_t pid : flock_holders(fd)) {
    const std::string comm = first_line("/proc/" + std::to_string(pid) + "/comm");
    if (!comm.empty() && comm != "mount.lunfs") return false;
    if (!comm.empty() && !lunfs_mounts_of(path, pid).empty()) return false;
  }
  return true;
}

Status lock_claim(const std::string& path, int fd, int how) {
  const auto deadline = std::chrono::steady_clock::now() + kFinishingHolderWait;
  for (;;) {
    if (flock(fd, how | LOCK_NB) == 0) return Status::ok();
    if (errno != EWOULDBLOCK) return error(errno, "cannot lock " + path);
    if (!held_by_finishing_daemon(path, fd) || std::chrono::steady_clock::now() >= deadline) {
      return error(EBUSY, path + " is in use on this host by " + describe_claim_holders(path, fd));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

Result<DeviceClaim> DeviceClaim::take(const std::string& path, int fd, bool block_device) {
  LUNFS_TRY(lock_claim(path, fd, LOCK_EX));
  int exclusive_fd = -1;
  if (block_device) {
    exclusive_fd = ::open(path.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC);
    if (exclusive_fd < 0) {
      const int err = errno;
      flock(fd, LOCK_UN);
      if (err == EBUSY) {
        return error(EBUSY, path + " is in use on this host (mounted by a kernel file system, part of a "
                                   "device-mapper or RAID device, or opened exclusively by another program)");
      }
      return error(err, "cannot open " + path + " exclusively");
    }
  }
  return DeviceClaim(exclusive_fd);
}

Result<DeviceClaim> DeviceClaim::take_shared(const std::string& path, int fd) {
  LUNFS_TRY(lock_claim(path, fd, LOCK_SH));
  return DeviceClaim(-1);
}

DeviceClaim::~DeviceClaim() {
  if (exclusive_fd_ >= 0) ::close(exclusive_fd_);
}

}  // namespace lunfs

// DeviceClaim: flock(LOCK_EX | LOCK_NB) against mount.lunfs's LOCK_SH; O_EXCL for block
// devices. The mountinfo lookup only makes the refusal name where the device is mounted.
#include "fsck/device_claim.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace lunfs {

namespace {

std::string resolved(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) ? std::string(buf) : path;
}

std::string in_use_message(const std::string& path) {
  std::string msg = path + " is in use by mount.lunfs on this host";
  auto mounts = lunfs_mounts_of(path);
  for (size_t i = 0; i < mounts.size(); ++i) msg += (i == 0 ? " (mounted on " : ", ") + mounts[i];
  if (!mounts.empty()) msg += ")";
  return msg + "; unmount it first (or wait for the fsck.lunfs that holds it to finish)";
}

}  // namespace

std::vector<std::string> lunfs_mounts_of(const std::string& path) {
  std::vector<std::string> out;
  const std::string want = resolved(path);
  std::ifstream info("/proc/self/mountinfo");
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

Result<DeviceClaim> DeviceClaim::take(const std::string& path, int fd, bool block_device) {
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return error(EBUSY, in_use_message(path));
    return error(errno, "cannot lock " + path);
  }
  int exclusive_fd = -1;
  if (block_device) {
    exclusive_fd = ::open(path.c_str(), O_RDONLY | O_EXCL | O_CLOEXEC);
    if (exclusive_fd < 0) {
      if (errno == EBUSY) {
        return error(EBUSY, path + " is in use on this host (mounted by a kernel file system, part of a "
                                   "device-mapper or RAID device, or opened exclusively by another program)");
      }
      return error(errno, "cannot open " + path + " exclusively");
    }
  }
  return DeviceClaim(exclusive_fd);
}

DeviceClaim::~DeviceClaim() {
  if (exclusive_fd_ >= 0) ::close(exclusive_fd_);
}

}  // namespace lunfs

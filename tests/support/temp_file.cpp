// TempFile, LoopDevice and run_command for tests.
#include "tests/support/temp_file.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace lunfs::testing {

TempFile::TempFile(unsigned long long size, const std::string& dir) {
  std::string base = dir;
  if (base.empty()) {
    const char* env = std::getenv("TMPDIR");
    base = env && *env ? env : "/var/tmp";
  }
  std::string templ = base + "/lunfs-test-XXXXXX";
  int fd = mkstemp(templ.data());
  if (fd < 0) throw std::runtime_error("mkstemp in " + base + " failed");
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    close(fd);
    unlink(templ.c_str());
    throw std::runtime_error("ftruncate failed");
  }
  close(fd);
  path_ = templ;
}

TempFile::~TempFile() { unlink(path_.c_str()); }

int run_command(const std::string& command, std::string* output) {
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return -1;
  std::array<char, 4096> buf{};
  std::string out;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = pclose(p);
  if (output) *output = out;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

ScratchMount::ScratchMount(const std::string& type) {
  std::string templ = "/var/tmp/lunfs-mnt-XXXXXX";
  if (!mkdtemp(templ.data())) return;
  dir_ = templ;
  if (run_command("mount -t " + type + " none '" + dir_ + "'") == 0) path_ = dir_;
}

ScratchMount::~ScratchMount() {
  if (!path_.empty()) run_command("umount '" + path_ + "'");
  if (!dir_.empty()) rmdir(dir_.c_str());
}

LoopDevice::LoopDevice(const std::string& file) {
  std::string out;
  if (run_command("losetup --find --show '" + file + "'", &out) == 0 && out.rfind("/dev/loop", 0) == 0) {
    path_ = out.substr(0, out.find('\n'));
  }
}

LoopDevice::~LoopDevice() {
  if (!path_.empty()) run_command("losetup -d " + path_);
}

}  // namespace lunfs::testing

// Scoped test resources that clean up after themselves even when a test fails: a sparse
// temporary file and a loop device attached to it.
#pragma once

#include <string>

namespace lunfs::testing {

class TempFile {
 public:
  // A sparse file of `size` bytes in `dir` (default: $TMPDIR or /var/tmp, which support
  // O_DIRECT; /tmp may be tmpfs).
  explicit TempFile(unsigned long long size, const std::string& dir = "");
  ~TempFile();
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class LoopDevice {
 public:
  // Attaches `file` to a free loop device; path() is empty when that fails.
  explicit LoopDevice(const std::string& file);
  ~LoopDevice();
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A file system of `type` (ramfs, tmpfs) mounted on a fresh temporary directory; unmounted
// and removed on destruction. path() is empty when mounting failed.
class ScratchMount {
 public:
  explicit ScratchMount(const std::string& type);
  ~ScratchMount();
  ScratchMount(const ScratchMount&) = delete;
  ScratchMount& operator=(const ScratchMount&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

// Runs a command line through /bin/sh; returns its exit status and fills `output` with
// stdout and stderr together.
int run_command(const std::string& command, std::string* output = nullptr);

}  // namespace lunfs::testing

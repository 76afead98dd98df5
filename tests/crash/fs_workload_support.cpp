// Mounting, replay and fsck for the file-system-level crash workloads.
#include "tests/crash/fs_workload_support.h"

#include <sys/stat.h>

#include <future>
#include <xxhash.h>

#include "fsck/checker.h"
#include "journal/replay.h"

namespace lunfs::crash {

MountOptions quiet_mount(bool read_only) {
  MountOptions o;
  o.read_only = read_only;
  o.logger = [](const std::string&) {};
  return o;
}

Status write_all(FileSystem& fs, uint64_t ino, uint64_t offset, const std::string& data) {
  LUNFS_ASSIGN(size_t n, fs.write(ino, offset, std::as_bytes(std::span(data))));
  return n == data.size() ? Status::ok() : error(EIO, "short write");
}

Status write_all_async(FileSystem& fs, uint64_t ino, uint64_t offset, const std::string& data) {
  std::promise<Result<size_t>> answer;
  fs.write_async(ino, offset, std::as_bytes(std::span(data)), [&answer](Result<size_t> n) { answer.set_value(std::move(n)); });
  LUNFS_ASSIGN(size_t n, answer.get_future().get());
  return n == data.size() ? Status::ok() : error(EIO, "short write");
}

Status create_synced(FileSystem& fs, uint64_t dir, const std::string& name, const std::string& data) {
  LUNFS_ASSIGN(Attr a, fs.mknod(dir, name, S_IFREG | 0644, 0, Cred{}));
  LUNFS_TRY(write_all(fs, a.ino, 0, data));
  LUNFS_TRY(fs.fsync(a.ino, false));
  return fs.forget(a.ino, 1);
}

Result<std::string> read_file(FileSystem& fs, uint64_t ino, uint64_t size) {
  std::string out(size, '\0');
  LUNFS_ASSIGN(size_t n, fs.read(ino, 0, std::as_writable_bytes(std::span(out))));
  if (n != out.size()) return error(EIO, "short read of inode " + std::to_string(ino));
  return out;
}

Result<std::string> read_name(FileSystem& fs, uint64_t dir, const std::string& name) {
  auto a = fs.lookup(dir, name);
  if (!a) return a.status();
  auto data = read_file(fs, a->ino, a->size);
  (void)fs.forget(a->ino, 1);
  if (!data) return error(data.err(), name + ": " + data.status().message());
  return data;
}

Status replay_slot(BlockDevice& image, const ondisk::Superblock& sb) {
  LUNFS_ASSIGN(auto report, journal::replay(image, sb, 0));
  if (report.end == journal::LogEnd::kDamaged) return error(EIO, "replay: " + report.to_string());
  return Status::ok();
}

Status fsck_clean(BlockDevice& image) {
  LUNFS_ASSIGN(auto report, check_filesystem(image));
  for (const auto& f : report.findings) {
    if (f.kind == FsckFinding::Kind::kError) return error(EUCLEAN, "fsck: " + f.text);
  }
  return Status::ok();
}

uint64_t digest(const std::string& text, uint64_t seed) { return XXH64(text.data(), text.size(), seed); }

}  // namespace lunfs::crash

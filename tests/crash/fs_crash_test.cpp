// File-system-level crash workloads: the core mounted over the journal on the recording
// device, doing what applications do on a VM host — write a small file and fsync it, the
// rename-over-an-old-file pattern, unlink with a directory fsync, overwrite a preallocated
// "VM image" with fdatasync. At every crash point the slot's journal is replayed, then the
// file system is mounted read-only and checked: everything acknowledged is present and
// intact, nothing acknowledged as removed is back, and fsck finds no error.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <map>

#include "fs/filesystem.h"
#include "fs/glock.h"
#include "fs/metadata_log.h"
#include "fsck/checker.h"
#include "journal/journal.h"
#include "journal/replay.h"
#include "tests/crash/crash_checker.h"

namespace lunfs::crash {
namespace {

constexpr uint64_t kOps = 14;

std::string content(uint64_t k, size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>('A' + (k * 5 + i / 97) % 26);
  return s;
}
size_t file_size(uint64_t k) { return 200 + (k * 7919) % 30000; }  // inline to several blocks

MountOptions quiet(bool read_only) {
  MountOptions o;
  o.read_only = read_only;
  o.logger = [](const std::string&) {};
  return o;
}

Status write_all(FileSystem& fs, uint64_t ino, uint64_t offset, const std::string& data) {
  LUNFS_ASSIGN(size_t n, fs.write(ino, offset, std::as_bytes(std::span(data))));
  return n == data.size() ? Status::ok() : error(EIO, "short write");
}

// Creates `name` with `data` and fsyncs it (the kernel's lookup reference is dropped).
Status create_synced(FileSystem& fs, uint64_t dir, const std::string& name, const std::string& data) {
  LUNFS_ASSIGN(Attr a, fs.mknod(dir, name, S_IFREG | 0644, 0, Cred{}));
  LUNFS_TRY(write_all(fs, a.ino, 0, data));
  LUNFS_TRY(fs.fsync(a.ino, false));
  return fs.forget(a.ino, 1);
}

Result<std::string> read_name(FileSystem& fs, uint64_t dir, const std::string& name) {
  auto a = fs.lookup(dir, name);
  if (!a) return a.status();
  std::string out(a->size, '\0');
  LUNFS_ASSIGN(size_t n, fs.read(a->ino, 0, std::as_writable_bytes(std::span(out))));
  (void)fs.forget(a->ino, 1);
  if (n != out.size()) return error(EIO, "short read of " + name);
  return out;
}

// Recovery is the mount's: replay the slot. A damaged log is a failure.
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

template <typename Body>
Status with_mount(BlockDevice& dev, const ondisk::Superblock& sb, Body body) {
  LUNFS_ASSIGN(auto j, journal::Journal::open(dev, sb, 0, {.commit_interval = std::chrono::milliseconds(0)}));
  NoLockManager lm;
  LUNFS_ASSIGN(auto fs, FileSystem::mount(dev, *j, lm, quiet(false)));
  LUNFS_TRY(body(*fs));
  return fs->unmount();
}

template <typename Body>
Result<uint64_t> with_read_only_mount(BlockDevice& image, Body body) {
  WriteThroughLog log(image);  // never written: the mount is read-only
  NoLockManager lm;
  LUNFS_ASSIGN(auto fs, FileSystem::mount(image, log, lm, quiet(true)));
  LUNFS_ASSIGN(uint64_t state, body(*fs));
  LUNFS_TRY(fs->unmount());
  return state;
}

// Op k: create f<k> and fsync it; every third op also writes tmp<k>, fsyncs it and renames
// it over "current", then fsyncs the directory; from op 3 on, f<k-2> is unlinked and the
// directory fsynced. Mark k follows op k.
Scenario small_files_scenario() {
  Scenario s;
  s.name = "small files, rename-over, unlink";
  s.run = [](RecordingDevice& dev, const ondisk::Superblock& sb) {
    return with_mount(dev, sb, [&](FileSystem& fs) -> Status {
      const uint64_t root = fs.root();
      for (uint64_t k = 1; k <= kOps; ++k) {
        LUNFS_TRY(create_synced(fs, root, "f" + std::to_string(k), content(k, file_size(k))));
        if (k % 3 == 0) {
          LUNFS_TRY(create_synced(fs, root, "tmp" + std::to_string(k), content(1000 + k, 1500)));
          LUNFS_TRY(fs.rename(root, "tmp" + std::to_string(k), root, "current", 0));
          LUNFS_TRY(fs.fsync(root, false));
        }
        if (k >= 3) {
          LUNFS_TRY(fs.unlink(root, "f" + std::to_string(k - 2)));
          LUNFS_TRY(fs.fsync(root, false));
        }
        dev.mark(k);
      }
      return Status::ok();
    });
  };
  s.recover = replay_slot;
  s.verify = [](BlockDevice& image, const ondisk::Superblock&, uint64_t acked) -> Result<uint64_t> {
    LUNFS_TRY(fsck_clean(image));
    return with_read_only_mount(image, [&](FileSystem& fs) -> Result<uint64_t> {
      // The journal commits in order, so the disk holds the state after some op m >= acked,
      // with only op m's steps after its create (rename, unlink) possibly missing. m is
      // the newest file present with its whole content.
      const uint64_t root = fs.root();
      std::map<uint64_t, bool> whole;
      uint64_t m = 0, state = 0;
      for (uint64_t k = 1; k <= kOps; ++k) {
        auto data = read_name(fs, root, "f" + std::to_string(k));
        if (data && !data->empty() && *data != content(k, file_size(k))) {
          return error(EIO, "f" + std::to_string(k) + " is torn: its content is neither empty nor whole");
        }
        whole[k] = data && !data->empty();
        if (whole[k]) m = k, state |= uint64_t{1} << k;
      }
      const std::string at = " (acked " + std::to_string(acked) + ", newest durable op " + std::to_string(m) + ")";
      if (m < acked) return error(EIO, "f" + std::to_string(acked) + ", acknowledged, is missing" + at);
      for (uint64_t j = 1; j + 3 <= m; ++j) {
        if (whole[j]) return error(EIO, "f" + std::to_string(j) + " came back after its unlink (op " + std::to_string(j + 2) + ")" + at);
      }
      if (m >= 2 && !whole[m - 1]) return error(EIO, "f" + std::to_string(m - 1) + " is missing" + at);
      auto current = read_name(fs, root, "current");
      const uint64_t r = m / 3 * 3;  // the newest rename that may be durable
      if (r >= 3) {
        bool ok = current && *current == content(1000 + r, 1500);
        if (!ok && r == m) ok = r == 3 ? !current : (current && *current == content(1000 + r - 3, 1500));
        if (!ok) return error(EIO, "'current' does not hold the version of op " + std::to_string(r) + at);
        if (r < m && fs.lookup(root, "tmp" + std::to_string(r))) {
          return error(EIO, "tmp" + std::to_string(r) + " still exists after its rename" + at);
        }
      }
      if (current && !current->empty()) state |= static_cast<uint64_t>(static_cast<unsigned char>((*current)[0])) << 40;
      return state;
    });
  };
  return s;
}

// A preallocated "VM image": overwrites of allocated blocks with fdatasync (straight to the
// LUN), interleaved with size-extending appends with fsync (allocating, journaled).
Scenario vm_image_scenario() {
  Scenario s;
  s.name = "VM image overwrites and appends";
  constexpr uint64_t kImage = 256 * 1024;
  s.run = [](RecordingDevice& dev, const ondisk::Superblock& sb) {
    return with_mount(dev, sb, [&](FileSystem& fs) -> Status {
      const uint64_t root = fs.root();
      LUNFS_TRY(create_synced(fs, root, "disk.img", content(0, kImage)));
      LUNFS_ASSIGN(Attr a, fs.lookup(root, "disk.img"));
      for (uint64_t k = 1; k <= kOps; ++k) {
        if (k % 2) {
          LUNFS_TRY(write_all(fs, a.ino, (k * 12288) % kImage, content(k, 8192)));
          LUNFS_TRY(fs.fsync(a.ino, true));
        } else {
          LUNFS_TRY(write_all(fs, a.ino, kImage + (k / 2 - 1) * 16384, content(k, 16384)));
          LUNFS_TRY(fs.fsync(a.ino, false));
        }
        dev.mark(k);
      }
      return fs.forget(a.ino, 1);
    });
  };
  s.recover = replay_slot;
  s.verify = [](BlockDevice& image, const ondisk::Superblock&, uint64_t acked) -> Result<uint64_t> {
    LUNFS_TRY(fsck_clean(image));
    if (acked == 0) return uint64_t{0};
    return with_read_only_mount(image, [&](FileSystem& fs) -> Result<uint64_t> {
      LUNFS_ASSIGN(std::string disk, read_name(fs, fs.root(), "disk.img"));
      const uint64_t acked_size = kImage + (acked / 2) * 16384;
      if (disk.size() < acked_size) {
        return error(EIO, "image is " + std::to_string(disk.size()) + " bytes, " + std::to_string(acked_size) +
                              " were acknowledged");
      }
      for (uint64_t k = 1; k <= acked; ++k) {
        // A later overwrite may cover an earlier one; check only the newest acknowledged
        // writer of each region.
        uint64_t off = k % 2 ? (k * 12288) % kImage : kImage + (k / 2 - 1) * 16384;
        size_t len = k % 2 ? 8192 : 16384;
        bool overwritten = false;
        for (uint64_t later = k + 1; later <= kOps && !overwritten; ++later) {
          uint64_t lo = later % 2 ? (later * 12288) % kImage : kImage + (later / 2 - 1) * 16384;
          uint64_t hi = lo + (later % 2 ? 8192 : 16384);
          overwritten = lo < off + len && off < hi;
        }
        if (!overwritten && disk.compare(off, len, content(k, len)) != 0) {
          return error(EIO, "write " + std::to_string(k) + " (acknowledged) is not in the image");
        }
      }
      return uint64_t{disk.size()};
    });
  };
  return s;
}

void expect_survives(const Scenario& s, size_t min_points) {
  auto stats = run_crash_test(s, CrashOptions::from_environment());
  ASSERT_TRUE(stats) << stats.status().to_string();
  for (const auto& f : stats->failure_texts) ADD_FAILURE() << f;
  EXPECT_EQ(stats->failures, 0u);
  EXPECT_GE(stats->points, min_points);
  std::printf("%s: %zu crash points in %zu flush epochs, %zu with a crash during replay\n", s.name.c_str(),
              stats->points, stats->epochs, stats->recovery_crashes);
}

TEST(FsCrash, SmallFilesRenameOverAndUnlink) { expect_survives(small_files_scenario(), 500); }
TEST(FsCrash, VmImageOverwritesAndAppends) { expect_survives(vm_image_scenario(), 300); }

}  // namespace
}  // namespace lunfs::crash

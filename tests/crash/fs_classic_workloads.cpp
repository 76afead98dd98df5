// The first file-system-level workloads: what applications do on a VM host — write a small
// file and fsync it, the rename-over-an-old-file pattern, unlink with a directory fsync,
// overwrite a preallocated "VM image" with fdatasync and append to it with fsync.
#include <sys/stat.h>

#include <map>

#include "tests/crash/fs_workload_support.h"
#include "tests/crash/fs_workloads.h"

namespace lunfs::crash {

namespace {

std::string file_content(uint64_t k, size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>('A' + (k * 5 + i / 97) % 26);
  return s;
}
size_t file_size(uint64_t k) { return 200 + (k * 7919) % 30000; }  // inline to several blocks

}  // namespace

// Op k: create f<k> and fsync it; every third op also writes tmp<k>, fsyncs it and renames
// it over "current", then fsyncs the directory; from op 3 on, f<k-2> is unlinked and the
// directory fsynced. Mark k follows op k.
Scenario small_files_scenario(uint64_t ops) {
  Scenario s;
  s.name = "small files, rename-over, unlink";
  s.run = [ops](RecordingDevice& dev, const ondisk::Superblock& sb) {
    return with_mount(dev, sb, [&](FileSystem& fs) -> Status {
      const uint64_t root = fs.root();
      for (uint64_t k = 1; k <= ops; ++k) {
        LUNFS_TRY(create_synced(fs, root, 'f' + std::to_string(k), file_content(k, file_size(k))));
        if (k % 3 == 0) {
          LUNFS_TRY(create_synced(fs, root, "tmp" + std::to_string(k), file_content(1000 + k, 1500)));
          LUNFS_TRY(fs.rename(root, "tmp" + std::to_string(k), root, "current", 0));
          LUNFS_TRY(fs.fsync(root, false));
        }
        if (k >= 3) {
          LUNFS_TRY(fs.unlink(root, 'f' + std::to_string(k - 2)));
          LUNFS_TRY(fs.fsync(root, false));
        }
        dev.mark(k);
      }
      return Status::ok();
    });
  };
  s.recover = replay_slot;
  s.verify = [ops](BlockDevice& image, const ondisk::Superblock&, uint64_t acked) -> Result<uint64_t> {
    LUNFS_TRY(fsck_clean(image));
    return with_read_only_mount(image, [&](FileSystem& fs) -> Result<uint64_t> {
      // The journal commits in order, so the disk holds the state after some op m >= acked,
      // with only op m's steps after its create (rename, unlink) possibly missing. m is
      // the newest file present with its whole content.
      const uint64_t root = fs.root();
      std::map<uint64_t, bool> whole;
      uint64_t m = 0;
      std::string state;  // which files are whole, and the version 'current' holds
      for (uint64_t k = 1; k <= ops; ++k) {
        auto data = read_name(fs, root, 'f' + std::to_string(k));
        if (data && !data->empty() && *data != file_content(k, file_size(k))) {
          return error(EIO, 'f' + std::to_string(k) + " is torn: its content is neither empty nor whole");
        }
        whole[k] = data && !data->empty();
        if (whole[k]) m = k, state += 'f' + std::to_string(k) + " ";
      }
      const std::string at = " (acked " + std::to_string(acked) + ", newest durable op " + std::to_string(m) + ")";
      if (m < acked) return error(EIO, 'f' + std::to_string(acked) + ", acknowledged, is missing" + at);
      for (uint64_t j = 1; j + 3 <= m; ++j) {
        if (whole[j]) return error(EIO, 'f' + std::to_string(j) + " came back after its unlink (op " + std::to_string(j + 2) + ")" + at);
      }
      if (m >= 2 && !whole[m - 1]) return error(EIO, 'f' + std::to_string(m - 1) + " is missing" + at);
      auto current = read_name(fs, root, "current");
      const uint64_t r = m / 3 * 3;  // the newest rename that may be durable
      if (r >= 3) {
        bool ok = current && *current == file_content(1000 + r, 1500);
        if (!ok && r == m) ok = r == 3 ? !current : (current && *current == file_content(1000 + r - 3, 1500));
        if (!ok) return error(EIO, "'current' does not hold the version of op " + std::to_string(r) + at);
        if (r < m && fs.lookup(root, "tmp" + std::to_string(r))) {
          return error(EIO, "tmp" + std::to_string(r) + " still exists after its rename" + at);
        }
      }
      if (current && !current->empty()) state += "current " + current->substr(0, 1);
      return digest(state);
    });
  };
  return s;
}

// A preallocated "VM image": overwrites of allocated blocks with fdatasync (straight to the
// LUN), interleaved with size-extending appends with fsync (allocating, journaled).
Scenario vm_image_scenario(uint64_t ops) {
  Scenario s;
  s.name = "VM image overwrites and appends";
  constexpr uint64_t kImage = 256 * 1024;
  s.run = [ops](RecordingDevice& dev, const ondisk::Superblock& sb) {
    return with_mount(dev, sb, [&](FileSystem& fs) -> Status {
      const uint64_t root = fs.root();
      LUNFS_TRY(create_synced(fs, root, "disk.img", file_content(0, kImage)));
      LUNFS_ASSIGN(Attr a, fs.lookup(root, "disk.img"));
      for (uint64_t k = 1; k <= ops; ++k) {
        if (k % 2) {
          LUNFS_TRY(write_all(fs, a.ino, (k * 12288) % kImage, file_content(k, 8192)));
          LUNFS_TRY(fs.fsync(a.ino, true));
        } else {
          LUNFS_TRY(write_all(fs, a.ino, kImage + (k / 2 - 1) * 16384, file_content(k, 16384)));
          LUNFS_TRY(fs.fsync(a.ino, false));
        }
        dev.mark(k);
      }
      return fs.forget(a.ino, 1);
    });
  };
  s.recover = replay_slot;
  s.verify = [ops](BlockDevice& image, const ondisk::Superblock&, uint64_t acked) -> Result<uint64_t> {
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
        for (uint64_t later = k + 1; later <= ops && !overwritten; ++later) {
          uint64_t lo = later % 2 ? (later * 12288) % kImage : kImage + (later / 2 - 1) * 16384;
          uint64_t hi = lo + (later % 2 ? 8192 : 16384);
          overwritten = lo < off + len && off < hi;
        }
        if (!overwritten && disk.compare(off, len, file_content(k, len)) != 0) {
          return error(EIO, "write " + std::to_string(k) + " (acknowledged) is not in the image");
        }
      }
      return uint64_t{disk.size()};
    });
  };
  return s;
}

}  // namespace lunfs::crash

// The long-symlink workload: symbolic links whose targets (3,841..4,095 bytes) do not fit
// the inode, so each target is written to a data block of its own before the transaction
// that maps it commits; older links are unlinked, and later ones may reuse their blocks.
// Free space holds a marker before mkfs, so a target mapped before its data reached the
// disk reads as the marker, never as the target.
#include <set>

#include "tests/crash/fs_workload_support.h"
#include "tests/crash/fs_workloads.h"

namespace lunfs::crash {

namespace {

std::string link_name(uint64_t k) { return "s" + std::to_string(k); }

// Link k's target: a path naming k in every component, 3841..4095 bytes.
std::string link_target(uint64_t k) {
  const size_t len = 3841 + (k * 53) % 255;
  std::string s;
  while (s.size() < len) s += "link" + std::to_string(k) + "-" + std::to_string(s.size()) + "/";
  s.resize(len);
  return s;
}

}  // namespace

// Op k: symlink s<k>; from op 3 on, unlink s<k-2>; then fsync the directory. Mark k
// follows op k. Each op's transactions reach the journal in one commit, so the disk holds
// the state after some op m >= acked: exactly s<m-1> and s<m>.
Scenario long_symlinks_scenario(uint64_t ops) {
  Scenario s;
  s.name = "long symlinks";
  s.disk_fill = "STALE-DISK-DATA!";
  s.run = [ops](RecordingDevice& dev, const ondisk::Superblock& sb) {
    return with_mount(dev, sb, [&](FileSystem& fs) -> Status {
      const uint64_t root = fs.root();
      for (uint64_t k = 1; k <= ops; ++k) {
        if (auto a = fs.symlink(root, link_name(k), link_target(k), {}); !a) return a.status();
        if (k >= 3) LUNFS_TRY(fs.unlink(root, link_name(k - 2)));
        LUNFS_TRY(fs.fsync(root, false));
        dev.mark(k);
      }
      return Status::ok();
    });
  };
  s.recover = replay_slot;
  s.verify = [ops](BlockDevice& image, const ondisk::Superblock&, uint64_t acked) -> Result<uint64_t> {
    LUNFS_TRY(fsck_clean(image));
    return with_read_only_mount(image, [&](FileSystem& fs) -> Result<uint64_t> {
      std::set<uint64_t> present;
      for (uint64_t k = 1; k <= ops; ++k) {
        auto a = fs.lookup(fs.root(), link_name(k));
        if (!a) {
          if (a.err() == ENOENT) continue;
          return error(EIO, link_name(k) + ": lookup: " + a.status().to_string());
        }
        auto target = fs.readlink(a->ino);
        if (!target) return error(EIO, link_name(k) + ": readlink: " + target.status().to_string());
        if (*target != link_target(k)) {
          const bool stale = target->find("STALE-DISK-DATA!") != std::string::npos;
          return error(EIO, link_name(k) + "'s target is not the one written" +
                                (stale ? " (it shows the stale disk contents)" : ""));
        }
        present.insert(k);
      }
      const uint64_t m = present.empty() ? 0 : *present.rbegin();
      const std::string at = " (acked " + std::to_string(acked) + ", newest durable op " + std::to_string(m) + ")";
      if (m < acked) return error(EIO, link_name(acked) + ", acknowledged, is missing" + at);
      std::set<uint64_t> expected;
      for (uint64_t k = m > 1 ? m - 1 : 1; k <= m; ++k) expected.insert(k);
      if (present != expected) {
        std::string names;
        for (uint64_t k : present) names += " " + link_name(k);
        return error(EIO, "links present:" + names + ", not those after one op" + at);
      }
      return digest("after op " + std::to_string(m));
    });
  };
  return s;
}

}  // namespace lunfs::crash

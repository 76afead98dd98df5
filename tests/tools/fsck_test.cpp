// fsck.lunfs: a consistent image checks clean; each deliberate corruption is a named case
// that fsck must report in words; exit codes follow fsck(8).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>

#include "fs/device/aligned_buffer.h"
#include "fs/format/ondisk.h"
#include "fs/format/rgrp_format.h"
#include "fs/format/slot_format.h"
#include "fs/core/filesystem.h"
#include "fs/core/glock.h"
#include "fs/metadata_log.h"
#include "fsck/checker.h"
#include "fsck/overlay_device.h"
#include "journal/area.h"
#include "journal/journal.h"
#include "journal/log_scan.h"
#include "journal/slot_tail.h"
#include "tests/support/image_builder.h"
#include "tests/support/temp_file.h"

namespace lunfs {
namespace {

using namespace ondisk;
using testing::ImageBuilder;
using testing::run_command;
using testing::TempFile;

const std::string kMkfs = std::string(LUNFS_BIN_DIR) + "/mkfs.lunfs";
const std::string kFsck = std::string(LUNFS_BIN_DIR) + "/fsck.lunfs";

// A populated image: nested directories (inline and hashed), files with depth-0 and
// depth-1 extent trees, a hard link, a symlink, xattrs.
struct Populated {
  ImageBuilder b;
  uint64_t images, hashed, disk0, disk1, config, link;
  Populated() {
    images = b.mkdir(b.root(), "images");
    hashed = b.mkdir_hashed(b.root(), "isos");
    disk0 = b.create_file(images, "disk0.raw", 3, 4, 0);
    disk1 = b.create_file(images, "disk1.qcow2", 5, 2, 1);
    config = b.create_file(b.root(), "vm.xml", 1, 1, 0);
    b.link(hashed, "disk0-hardlink", disk0);
    for (int i = 0; i < 40; ++i) b.create_file(hashed, "iso-" + std::to_string(i) + ".iso", 1, 1, 0);
    link = b.symlink(b.root(), "latest", "images/disk1.qcow2");
    b.set_xattr(disk1, "vm", "web01");
    b.mkdir(images, "snapshots");
    b.finish();
  }
};

FsckReport check(ImageBuilder& b) {
  auto report = check_filesystem(b.device());
  EXPECT_TRUE(report) << report.status().to_string();
  return report ? *report : FsckReport{};
}

std::string all_findings(const FsckReport& r) {
  std::string s;
  for (const auto& f : r.findings) s += f.text + "\n";
  return s;
}

TEST(Fsck, PopulatedImageChecksClean) {
  Populated p;
  FsckReport r = check(p.b);
  EXPECT_EQ(r.findings.size(), 0u) << all_findings(r);
  EXPECT_EQ(r.inodes, 48u);
  EXPECT_EQ(r.directories, 4u);
}

// Each case damages the populated image one way and names what fsck must say.
struct Corruption {
  const char* name;
  std::function<void(Populated&)> damage;
  const char* expected;  // a phrase of the finding
};
void PrintTo(const Corruption& c, std::ostream* os) { *os << c.name; }

class FsckCorruption : public ::testing::TestWithParam<Corruption> {};

TEST_P(FsckCorruption, IsReportedInWords) {
  Populated p;
  GetParam().damage(p);
  auto report = check_filesystem(p.b.device());
  ASSERT_TRUE(report) << report.status().to_string();
  EXPECT_GT(report->errors(), 0u) << "no error found";
  EXPECT_TRUE(report->mentions(GetParam().expected)) << "expected '" << GetParam().expected << "' in:\n" << all_findings(*report);
}

// Edits a decoded structure's body bytes and reseals, leaving only the semantic damage.
void edit(Populated& p, uint64_t block, size_t offset, uint64_t value, size_t width) {
  auto data = p.b.read_block(block);
  std::memcpy(data.data() + offset, &value, width);
  p.b.write_block(block, data);
  p.b.reseal(block);
}

uint64_t rg0_header(Populated& p) { return p.b.sb().geometry.rgrp(0).header; }
uint64_t rg0_bitmap(Populated& p) { return rg0_header(p) + 1; }
uint32_t rg0_index(Populated& p, uint64_t block) { return static_cast<uint32_t>(block - p.b.sb().geometry.rgrp(0).first_data); }

void set_state(Populated& p, uint64_t block, BlockState s) {
  uint32_t i = rg0_index(p, block);
  auto data = p.b.read_block(rg0_bitmap(p));
  auto& byte = reinterpret_cast<uint8_t&>(data[kBitmapDataOffset + i / 4]);
  byte = static_cast<uint8_t>((byte & ~(3u << (i % 4 * 2))) | (static_cast<unsigned>(s) << (i % 4 * 2)));
  p.b.write_block(rg0_bitmap(p), data);
  p.b.reseal(rg0_bitmap(p));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, FsckCorruption,
    ::testing::Values(
        Corruption{"primary_superblock_bit_flip", [](Populated& p) { p.b.flip_bit(p.b.sb().geometry.sb_block, 3000); },
                   "primary superblock damaged"},
        Corruption{"backup_superblock_bit_flip", [](Populated& p) { p.b.flip_bit(p.b.sb().geometry.backup_sb_block, 9000); },
                   "backup superblock"},
        Corruption{"backup_superblock_differs",
                   [](Populated& p) { edit(p, p.b.sb().geometry.backup_sb_block, 88, 0x41, 1); },  // label
                   "differs from the primary"},
        Corruption{"slot_header_bit_flip", [](Populated& p) { p.b.flip_bit(p.b.sb().geometry.slot_header(1), 400); },
                   "slot 1: slot header block"},
        Corruption{"heartbeat_zeroed",
                   [](Populated& p) { p.b.write_block(p.b.sb().geometry.heartbeat(0), std::vector<std::byte>(4096)); },
                   "block is empty"},
        Corruption{"statfs_wrong_total", [](Populated& p) { edit(p, p.b.sb().geometry.statfs_block, 40, 12345, 8); },
                   "statfs: master plus slot deltas"},
        Corruption{"rgrp_header_bit_flip", [](Populated& p) { p.b.flip_bit(rg0_header(p), 500); },
                   "resource group header block"},
        Corruption{"rgrp_free_count_wrong", [](Populated& p) { edit(p, rg0_header(p), 56, 17, 4); },
                   "header counts 17 free blocks"},
        Corruption{"rgrp_inode_count_wrong",
                   [](Populated& p) {
                     auto h = p.b.read_block(rg0_header(p));
                     uint32_t dinodes;
                     std::memcpy(&dinodes, h.data() + 60, 4);
                     edit(p, rg0_header(p), 60, dinodes - 1, 4);
                   },
                   "inode blocks, the bitmap"},
        Corruption{"bitmap_bit_flip", [](Populated& p) { p.b.flip_bit(rg0_bitmap(p), 8 * 100); },
                   "allocation bitmap block"},
        Corruption{"inode_checksum", [](Populated& p) { p.b.flip_bit(p.disk0, 8 * 40); }, "inode block"},
        Corruption{"inode_link_count_wrong", [](Populated& p) { edit(p, p.disk0, 44, 1, 4); }, "link count 1"},
        Corruption{"inode_block_count_wrong", [](Populated& p) { edit(p, p.disk0, 56, 99, 8); }, "block count says 99"},
        Corruption{"inode_unknown_file_type", [](Populated& p) { edit(p, p.config, 32, 0170644, 4); }, "unknown file type"},
        Corruption{"extent_points_at_free_block",
                   [](Populated& p) { set_state(p, p.b.extents_of(p.disk0)[1].physical, BlockState::kFree); },
                   "is marked free in the bitmap"},
        Corruption{"two_files_share_a_block",
                   [](Populated& p) {
                     // Point vm.xml's only extent at disk0's first block.
                     auto data = p.b.read_block(p.config);
                     uint64_t target = p.b.extents_of(p.disk0)[0].physical;
                     std::memcpy(data.data() + 256 + 8 + 8, &target, 8);
                     p.b.write_block(p.config, data);
                     p.b.reseal(p.config);
                   },
                   "is used twice"},
        Corruption{"leaked_block",
                   [](Populated& p) { set_state(p, p.b.sb().geometry.rgrp(0).first_data + 2000, BlockState::kUsed); },
                   "belong to no file"},
        Corruption{"extent_node_bit_flip", [](Populated& p) { p.b.flip_bit(p.b.extent_node_of(p.disk1), 8 * 60); },
                   "extent node block"},
        Corruption{"extent_node_of_another_inode",
                   [](Populated& p) { edit(p, p.b.extent_node_of(p.disk1), 32, p.disk0, 8); }, "belongs to inode"},
        Corruption{"dir_leaf_bit_flip", [](Populated& p) { p.b.flip_bit(p.b.leaves_of(p.hashed)[1], 8 * 100); },
                   "directory leaf block"},
        Corruption{"dir_leaf_in_wrong_slot",
                   [](Populated& p) {
                     // Swap the two leaves' hash prefixes.
                     edit(p, p.b.leaves_of(p.hashed)[0], 40, 1, 4);
                   },
                   "does not belong in this leaf's hash range"},
        Corruption{"dir_entry_points_at_non_inode",
                   [](Populated& p) {
                     // The config file's inode block is freed behind its entry's back.
                     set_state(p, p.config, BlockState::kFree);
                   },
                   "which is not an inode"},
        Corruption{"lost_file",
                   [](Populated& p) {
                     // Drop the root directory's entries: its inline content is emptied.
                     auto data = p.b.read_block(p.b.root());
                     uint32_t zero = 0;
                     uint64_t zero64 = 0;
                     std::memcpy(data.data() + 124, &zero, 4);
                     std::memcpy(data.data() + 160, &zero64, 8);
                     p.b.write_block(p.b.root(), data);
                     p.b.reseal(p.b.root());
                   },
                   "is in no directory"},
        Corruption{"directory_parent_wrong", [](Populated& p) { edit(p, p.images, 144, p.hashed, 8); },
                   "says its parent is"},
        Corruption{"xattr_block_bit_flip", [](Populated& p) { p.b.flip_bit(p.b.xattr_block_of(p.disk1), 8 * 50); },
                   "xattr block"},
        Corruption{"misdirected_write",
                   [](Populated& p) { p.b.write_block(p.disk0, p.b.read_block(p.config)); },
                   "says it belongs at block"},
        Corruption{"block_from_an_older_file_system",
                   [](Populated& p) {
                     auto data = p.b.read_block(p.config);
                     seal_block(data, BlockType::kInode, p.config, 0, 0xdeadbeef);
                     p.b.write_block(p.config, data);
                   },
                   "checksum mismatch"},
        Corruption{"unlinked_inode_still_named",
                   [](Populated& p) { set_state(p, p.config, BlockState::kUnlinked); }, "which is marked unlinked"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Fsck, BothSuperblocksDamagedIsAnOperationalError) {
  Populated p;
  p.b.flip_bit(p.b.sb().geometry.sb_block, 2000);
  p.b.flip_bit(p.b.sb().geometry.backup_sb_block, 2000);
  auto report = check_filesystem(p.b.device());
  ASSERT_FALSE(report);
  EXPECT_NE(report.status().message().find("no valid backup"), std::string::npos) << report.status().message();
}

TEST(Fsck, UnknownIncompatibleFeatureIsRefused) {
  Populated p;
  for (uint64_t block : {p.b.sb().geometry.sb_block, p.b.sb().geometry.backup_sb_block}) {
    edit(p, block, 64, uint64_t{1} << 20, 8);
  }
  auto report = check_filesystem(p.b.device());
  ASSERT_FALSE(report);
  EXPECT_EQ(report.err(), ENOTSUP);
  EXPECT_NE(report.status().message().find("incompatible features"), std::string::npos);
}

TEST(Fsck, TruncatedDeviceIsReported) {
  TempFile file(512 << 20);
  std::string out;
  ASSERT_EQ(run_command(kMkfs + " -q -t a:b " + file.path(), &out), 0) << out;
  ASSERT_EQ(truncate(file.path().c_str(), 256 << 20), 0);
  EXPECT_EQ(run_command(kFsck + " -n " + file.path(), &out), 4) << out;
  EXPECT_NE(out.find("is smaller than the file system (536870912 bytes): was the LUN shrunk?"), std::string::npos) << out;
}

TEST(FsckCli, ExitCodesFollowFsck8) {
  TempFile file(512 << 20);
  std::string out;
  EXPECT_EQ(run_command(kFsck + " -n " + file.path(), &out), 8) << out;  // zeros: not lunfs
  EXPECT_NE(out.find("not a lunfs device"), std::string::npos) << out;
  ASSERT_EQ(run_command("mkfs.ext4 -q -F " + file.path(), &out), 0) << out;
  EXPECT_EQ(run_command(kFsck + " -n " + file.path(), &out), 8) << out;
  EXPECT_NE(out.find("it holds a ext4 file system"), std::string::npos) << out;
  ASSERT_EQ(run_command(kMkfs + " -q -f -t a:b " + file.path(), &out), 0) << out;
  EXPECT_EQ(run_command(kFsck + " -n " + file.path(), &out), 0) << out;
  EXPECT_EQ(run_command(kFsck + " " + file.path(), &out), 0) << out;
  EXPECT_EQ(run_command(kFsck + " -n -Q " + file.path(), &out), 16) << out;
  EXPECT_EQ(run_command(kFsck + " -n", &out), 16) << out;
  EXPECT_EQ(run_command(kFsck + " -n /nonexistent", &out), 8) << out;
  // Damage: a resource group header bit flip -> 4, with the problem in words.
  auto dev = FileBlockDevice::open(file.path());
  ASSERT_TRUE(dev);
  AlignedBuffer sbbuf(4096);
  ASSERT_TRUE((*dev)->read(65536, sbbuf.span()));
  auto sb = decode_superblock(sbbuf.span(), 16);
  ASSERT_TRUE(sb);
  uint64_t header = sb->geometry.rgrp(2).header;
  AlignedBuffer block(4096);
  ASSERT_TRUE((*dev)->read(header * 4096, block.span()));
  block.span()[100] ^= std::byte{4};
  ASSERT_TRUE((*dev)->write(header * 4096, block.span()));
  dev->reset();
  EXPECT_EQ(run_command(kFsck + " -n " + file.path(), &out), 4) << out;
  EXPECT_NE(out.find("ERROR: resource group 2: resource group header block " + std::to_string(header) + ": checksum mismatch"),
            std::string::npos)
      << out;
}

TEST(FsckCli, CheckOfEmptyTibImageIsFastAndSmall) {
  // Correctness of the fast path only; timing lives in bench/.
  TempFile file(1ull << 40);
  std::string out;
  ASSERT_EQ(run_command(kMkfs + " -q -t a:b " + file.path(), &out), 0) << out;
  ASSERT_EQ(run_command(kFsck + " -n -v " + file.path(), &out), 0) << out;
  EXPECT_NE(out.find("1 inodes (1 directories)"), std::string::npos) << out;
}

// ---- Dirty journals: fsck.lunfs replays them (in memory with -n) before it checks. ----

// A LUN file left as a crash leaves it: a child process ran the core over slot 1's
// journal, created kAcked files (each fsynced, so acknowledged), then a file nobody waited
// for, and exited without unmounting (as a SIGKILL would), so slot 1's journal is dirty.
class CrashedImage : public ::testing::Test {
 protected:
  static constexpr int kAcked = 5;
  static std::string data(int k) { return std::string(5000 + k * 3000, static_cast<char>('a' + k)); }

  void SetUp() override {
    std::string out;
    ASSERT_EQ(run_command(kMkfs + " -q -t test:fs -j 2 " + file_.path(), &out), 0) << out;
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) _exit(crash_run(file_.path()) ? 0 : 1);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the workload failed";
  }

  // Runs in the child: never returns through destructors that would unmount.
  static bool crash_run(const std::string& path) {
    auto dev = FileBlockDevice::open(path);
    if (!dev) return false;
    auto sb = FileSystem::read_superblock(**dev);
    if (!sb) return false;
    auto j = journal::Journal::open(**dev, *sb, 1, {.commit_interval = std::chrono::milliseconds(0)});
    if (!j) return false;
    NoLockManager lm;
    MountOptions mo;
    mo.slot = 1;
    mo.logger = [](const std::string&) {};
    auto fs = FileSystem::mount(**dev, **j, lm, mo);
    if (!fs) return false;
    for (int k = 0; k < kAcked; ++k) {
      auto a = (*fs)->mknod((*fs)->root(), "acked" + std::to_string(k), S_IFREG | 0644, 0, Cred{});
      if (!a) return false;
      const std::string d = data(k);
      auto w = (*fs)->write(a->ino, 0, std::as_bytes(std::span(d)));
      if (!w || *w != d.size() || !(*fs)->fsync(a->ino, false)) return false;
    }
    if (!(*fs)->mknod((*fs)->root(), "never-synced", S_IFREG | 0644, 0, Cred{})) return false;
    _exit(0);  // the crash: no unmount, no checkpoint, no commit of the running transaction
  }

  std::string md5() {
    std::string out;
    EXPECT_EQ(run_command("md5sum " + file_.path(), &out), 0) << out;
    return out.substr(0, 32);
  }

  journal::ScanResult scan_slot1() {
    auto dev = FileBlockDevice::open(file_.path(), {.read_only = true});
    EXPECT_TRUE(dev);
    auto sb = FileSystem::read_superblock(**dev);
    EXPECT_TRUE(sb);
    auto header = journal::read_slot_header(**dev, *sb, 1);
    EXPECT_TRUE(header);
    auto scan = journal::scan_log(**dev, journal::JournalArea::of(*sb, 1), header->tail_block, header->tail_sequence);
    EXPECT_TRUE(scan);
    return *scan;
  }

  // Rewrites part of the log block at `position` of slot 1's journal.
  void damage_log_block(uint32_t position, size_t at, std::byte value) {
    auto dev = FileBlockDevice::open(file_.path());
    ASSERT_TRUE(dev);
    auto sb = FileSystem::read_superblock(**dev);
    ASSERT_TRUE(sb);
    const auto area = journal::JournalArea::of(*sb, 1);
    AlignedBuffer block(area.block_size);
    ASSERT_TRUE((*dev)->read(area.offset(position), block.span()));
    block.span()[at] = value;
    ASSERT_TRUE((*dev)->write(area.offset(position), block.span()));
  }

  // What the acknowledged files hold, read through the core (read-only, writes nothing).
  void expect_acked_files() {
    auto dev = FileBlockDevice::open(file_.path(), {.read_only = true});
    ASSERT_TRUE(dev);
    WriteThroughLog log(**dev);
    NoLockManager lm;
    MountOptions mo;
    mo.read_only = true;
    mo.logger = [](const std::string&) {};
    auto fs = FileSystem::mount(**dev, log, lm, mo);
    ASSERT_TRUE(fs) << fs.status().to_string();
    for (int k = 0; k < kAcked; ++k) {
      auto a = (*fs)->lookup((*fs)->root(), "acked" + std::to_string(k));
      ASSERT_TRUE(a) << "acked" << k << ": " << a.status().to_string();
      std::string got(a->size, '\0');
      auto n = (*fs)->read(a->ino, 0, std::as_writable_bytes(std::span(got)));
      ASSERT_TRUE(n);
      EXPECT_EQ(got, data(k)) << "acked" << k;
    }
    EXPECT_FALSE((*fs)->lookup((*fs)->root(), "never-synced")) << "nobody committed it";
    ASSERT_TRUE((*fs)->unmount());
  }

  TempFile file_{256 << 20};
};

TEST_F(CrashedImage, CheckOnlyReplaysInMemoryReportsTheJournalAndWritesNothing) {
  const std::string before = md5();
  std::string out;
  EXPECT_EQ(run_command(kFsck + " -n " + file_.path(), &out), 0) << out;
  EXPECT_NE(out.find("warning: slot 1: journal needs replay: "), std::string::npos) << out;
  // Checked as after replay: the root and the acknowledged files, nothing else, no errors.
  EXPECT_NE(out.find(std::to_string(1 + kAcked) + " inodes (1 directories)"), std::string::npos) << out;
  EXPECT_NE(out.find("0 error(s)"), std::string::npos) << out;
  EXPECT_EQ(md5(), before) << "fsck -n changed the image";
}

TEST_F(CrashedImage, RepairRefusesToReplayWithoutTheAdminsWord) {
  const std::string before = md5();
  std::string out;
  EXPECT_EQ(run_command(kFsck + " -y " + file_.path(), &out), 4) << out;
  EXPECT_NE(out.find("not replaying the journal(s) of slot(s) 1"), std::string::npos) << out;
  EXPECT_NE(out.find("--all-nodes-unmounted"), std::string::npos) << out;
  EXPECT_EQ(md5(), before) << "a refused replay changed the image";
}

TEST_F(CrashedImage, RepairReplaysThenTheJournalIsCleanAndAcknowledgedDataIsThere) {
  std::string out;
  EXPECT_EQ(run_command(kFsck + " --all-nodes-unmounted " + file_.path(), &out), 1) << out;
  EXPECT_NE(out.find("slot 1: replayed " + std::to_string(kAcked) + " transactions"), std::string::npos) << out;
  EXPECT_NE(out.find("0 error(s)"), std::string::npos) << out;
  EXPECT_TRUE(scan_slot1().txns.empty()) << "the journal is still dirty";
  EXPECT_EQ(run_command(kFsck + " -n " + file_.path(), &out), 0) << out;
  EXPECT_EQ(out.find("journal"), std::string::npos) << out;
  EXPECT_NE(out.find("0 error(s), 0 warning(s)"), std::string::npos) << out;
  expect_acked_files();
}

// A mount.lunfs of this host holds an exclusive flock on the device (fs/device/device_claim.h);
// the through-the-mount version is in tests/fuse/commit_test.cpp.
TEST_F(CrashedImage, RefusesWhileTheDeviceIsLockedByAMount) {
  int fd = open(file_.path().c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX), 0);
  std::string out;
  EXPECT_EQ(run_command(kFsck + " -n " + file_.path(), &out), 8) << out;
  EXPECT_NE(out.find("is in use on this host by "), std::string::npos) << out;
  EXPECT_NE(out.find("(pid " + std::to_string(getpid()) + ")"), std::string::npos) << "names the holder: " << out;
  EXPECT_EQ(run_command(kFsck + " --all-nodes-unmounted " + file_.path(), &out), 8) << out;
  close(fd);
  EXPECT_FALSE(scan_slot1().txns.empty()) << "fsck replayed under a mount";
}

TEST_F(CrashedImage, RefusesABlockDeviceInUseOnThisHost) {
  if (geteuid() != 0) GTEST_SKIP() << "loop devices need root";
  testing::LoopDevice loop(file_.path());
  if (loop.path().empty()) GTEST_SKIP() << "no loop device available";
  int fd = open(loop.path().c_str(), O_RDONLY | O_EXCL | O_CLOEXEC);  // as a kernel mount holds it
  ASSERT_GE(fd, 0);
  std::string out;
  EXPECT_EQ(run_command(kFsck + " --all-nodes-unmounted " + loop.path(), &out), 8) << out;
  EXPECT_NE(out.find("is in use on this host"), std::string::npos) << out;
  close(fd);
  EXPECT_EQ(run_command(kFsck + " --all-nodes-unmounted " + loop.path(), &out), 1) << out;
}

TEST_F(CrashedImage, MissingTransactionIsReportedAsDamageWithSlotAndPlace) {
  auto scan = scan_slot1();
  ASSERT_GE(scan.txns.size(), 3u);
  damage_log_block(scan.txns[1].start, 0, std::byte{0x5a});  // transaction 2's first record: magic
  std::string out;
  EXPECT_EQ(run_command(kFsck + " -n " + file_.path(), &out), 4) << out;
  EXPECT_NE(out.find("ERROR: slot 1: journal damaged: "), std::string::npos) << out;
  EXPECT_NE(out.find("committed transactions were lost"), std::string::npos) << out;
  // Where replay stops: the journal block after transaction 1.
  EXPECT_NE(out.find("at journal block " + std::to_string(scan.txns[1].start)), std::string::npos) << out;
  // Repair replays what is intact, and keeps reporting the damage.
  EXPECT_EQ(run_command(kFsck + " --all-nodes-unmounted " + file_.path(), &out), 4) << out;
  EXPECT_NE(out.find("journal damaged"), std::string::npos) << out;
}

TEST_F(CrashedImage, CorruptImageInTheLogIsReportedNotReplayed) {
  auto scan = scan_slot1();
  ASSERT_GE(scan.txns.size(), 2u);
  ASSERT_FALSE(scan.txns[0].images.empty());
  damage_log_block(scan.txns[0].images[0].second, 2000, std::byte{0xff});  // fails the commit hash
  std::string out;
  EXPECT_EQ(run_command(kFsck + " -n " + file_.path(), &out), 4) << out;
  EXPECT_NE(out.find("ERROR: slot 1: journal damaged: "), std::string::npos) << out;
  EXPECT_EQ(run_command(kFsck + " --all-nodes-unmounted " + file_.path(), &out), 4) << out;
}

TEST_F(CrashedImage, JournalOfAnotherFileSystemIsNotReplayed) {
  // The same workload's log copied into a freshly formatted file system (new UUID): every
  // record names the wrong file system, so nothing is replayed and the image is unchanged.
  TempFile other(256 << 20);
  std::string out;
  ASSERT_EQ(run_command(kMkfs + " -q -t test:fs -j 2 " + other.path(), &out), 0) << out;
  auto dev = FileBlockDevice::open(file_.path(), {.read_only = true});
  auto odev = FileBlockDevice::open(other.path());
  ASSERT_TRUE(dev && odev);
  auto sb = FileSystem::read_superblock(**dev);
  ASSERT_TRUE(sb);
  const auto area = journal::JournalArea::of(*sb, 1);
  AlignedBuffer log(uint64_t{64} * area.block_size);
  ASSERT_TRUE((*dev)->read(area.offset(0), log.span()));
  ASSERT_TRUE((*odev)->write(area.offset(0), log.span()));
  odev->reset();
  EXPECT_EQ(run_command(kFsck + " -n " + other.path(), &out), 0) << out;
  EXPECT_EQ(out.find("needs replay"), std::string::npos) << out;
  EXPECT_NE(out.find("warning: slot 1: journal holds "), std::string::npos) << out;
  EXPECT_NE(out.find("records of another file system or slot (first: journal block 0: journal record of another "
                     "file system (different UUID))"), std::string::npos) << out;
  EXPECT_NE(out.find("1 inodes (1 directories)"), std::string::npos) << out;
}


// fsck -n replays into this overlay, so it must read back exactly what was written over the
// device, and never write the device.
TEST(OverlayDevice, ReadsSeeWritesOverTheDeviceWhichStaysUnchanged) {
  constexpr size_t kSize = 1 << 20;
  auto base = make_memory_device(kSize, 512);
  std::vector<std::byte> model(kSize);
  for (size_t i = 0; i < kSize; ++i) model[i] = static_cast<std::byte>(i * 7 % 251);
  ASSERT_TRUE(base->write(0, model));
  const std::vector<std::byte> original = model;
  OverlayDevice overlay(*base);
  // Sector-aligned writes that cover units partly, exactly, across a boundary, and twice.
  const std::pair<uint64_t, size_t> writes[] = {{512, 512}, {4096, 4096}, {7680, 9216}, {1024, 1536},
                                                {kSize - 512, 512}, {8192, 512}};
  uint8_t fill = 1;
  for (auto [offset, len] : writes) {
    std::vector<std::byte> data(len, static_cast<std::byte>(fill++));
    ASSERT_TRUE(overlay.write(offset, data));
    std::copy(data.begin(), data.end(), model.begin() + static_cast<ptrdiff_t>(offset));
  }
  std::vector<std::byte> got(kSize);
  ASSERT_TRUE(overlay.read(0, got));
  EXPECT_TRUE(got == model);
  std::vector<std::byte> part(1536);  // a read that starts and ends inside overlay units
  ASSERT_TRUE(overlay.read(7168, part));
  EXPECT_TRUE(std::equal(part.begin(), part.end(), model.begin() + 7168));
  ASSERT_TRUE(base->read(0, got));
  EXPECT_TRUE(got == original) << "the overlay wrote to the device";
  EXPECT_EQ(overlay.write(100, std::span(got).first(512)).err(), EINVAL);
  EXPECT_EQ(overlay.write(kSize, std::span(got).first(512)).err(), ENOSPC);
}


}  // namespace
}  // namespace lunfs

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
#include "tests/tools/fsck_cases.h"

namespace lunfs {
namespace {

using namespace ondisk;
using testing::ImageBuilder;
using testing::run_command;
using testing::TempFile;
using testing::Corruption;
using testing::Populated;
using testing::corruption_cases;
using testing::edit;

const std::string kMkfs = std::string(LUNFS_BIN_DIR) + "/mkfs.lunfs";
const std::string kFsck = std::string(LUNFS_BIN_DIR) + "/fsck.lunfs";


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

class FsckCorruption : public ::testing::TestWithParam<Corruption> {};

TEST_P(FsckCorruption, IsReportedInWords) {
  Populated p;
  GetParam().damage(p);
  auto report = check_filesystem(p.b.device());
  ASSERT_TRUE(report) << report.status().to_string();
  EXPECT_GT(report->errors(), 0u) << "no error found";
  EXPECT_TRUE(report->mentions(GetParam().expected)) << "expected '" << GetParam().expected << "' in:\n" << all_findings(*report);
}

INSTANTIATE_TEST_SUITE_P(Cases, FsckCorruption, ::testing::ValuesIn(corruption_cases()),
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
  // Repair replays what is intact, reports the damage, and resets the journal.
  EXPECT_EQ(run_command(kFsck + " --all-nodes-unmounted " + file_.path(), &out), 1) << out;
  EXPECT_NE(out.find("journal damaged"), std::string::npos) << out;
  EXPECT_NE(out.find("repaired: slot 1: journal reset"), std::string::npos) << out;
  EXPECT_EQ(run_command(kFsck + " -n " + file_.path(), &out), 0) << out;
}

TEST_F(CrashedImage, CorruptImageInTheLogIsReportedNotReplayed) {
  auto scan = scan_slot1();
  ASSERT_GE(scan.txns.size(), 2u);
  ASSERT_FALSE(scan.txns[0].images.empty());
  damage_log_block(scan.txns[0].images[0].second, 2000, std::byte{0xff});  // fails the commit hash
  std::string out;
  EXPECT_EQ(run_command(kFsck + " -n " + file_.path(), &out), 4) << out;
  EXPECT_NE(out.find("ERROR: slot 1: journal damaged: "), std::string::npos) << out;
  EXPECT_EQ(run_command(kFsck + " --all-nodes-unmounted " + file_.path(), &out), 1) << out;
  EXPECT_NE(out.find("repaired: slot 1: journal reset"), std::string::npos) << out;
  EXPECT_EQ(run_command(kFsck + " -n " + file_.path(), &out), 0) << out;
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

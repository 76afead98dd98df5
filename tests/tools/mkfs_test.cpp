// mkfs.lunfs: layouts for many geometries (each followed by a clean fsck), the command
// line, and refusal of everything a careful admin would want refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "fs/device/aligned_buffer.h"
#include "fs/format/signature.h"
#include "fs/format/superblock.h"
#include "fsck/checker.h"
#include "mkfs/formatter.h"
#include "tests/support/temp_file.h"

namespace lunfs {
namespace {

using testing::run_command;
using testing::TempFile;

const std::string kMkfs = std::string(LUNFS_BIN_DIR) + "/mkfs.lunfs";
const std::string kFsck = std::string(LUNFS_BIN_DIR) + "/fsck.lunfs";

MkfsOptions options(uint32_t journals = 2, uint32_t journal_mib = 8, uint32_t bs = 4096) {
  MkfsOptions o;
  o.cluster_name = "lab";
  o.fs_name = "vmstore";
  o.journals = journals;
  o.journal_mib = journal_mib;
  o.block_size = bs;
  return o;
}

// Formats a memory device and checks it with fsck; returns the superblock.
ondisk::Superblock format_and_check(uint64_t bytes, const MkfsOptions& o) {
  auto dev = make_memory_device(bytes);
  auto sb = plan_filesystem(*dev, o);
  EXPECT_TRUE(sb) << sb.status().to_string();
  if (!sb) return {};
  EXPECT_TRUE(write_filesystem(*dev, *sb));
  auto report = check_filesystem(*dev);
  EXPECT_TRUE(report) << report.status().to_string();
  if (!report) return *sb;
  for (const auto& f : report->findings) ADD_FAILURE() << f.text;
  EXPECT_EQ(report->sb, *sb);
  EXPECT_EQ(report->inodes, 1u);
  return *sb;
}

struct GeometryCase {
  const char* name;
  uint64_t bytes;
  uint32_t journals, journal_mib, block_size;
};
void PrintTo(const GeometryCase& c, std::ostream* os) { *os << c.name; }

class MkfsGeometry : public ::testing::TestWithParam<GeometryCase> {};

TEST_P(MkfsGeometry, FormatsAndChecksClean) {
  const auto& c = GetParam();
  auto sb = format_and_check(c.bytes, options(c.journals, c.journal_mib, c.block_size));
  EXPECT_EQ(sb.geometry.block_size, c.block_size);
  EXPECT_EQ(sb.geometry.journal_count, c.journals);
  EXPECT_EQ(sb.geometry.block_count, c.bytes / c.block_size);
  EXPECT_GE(sb.geometry.rgrp_count, 1u);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, MkfsGeometry,
    ::testing::Values(
        GeometryCase{"tiny_smallest_possible", (10ull << 20) + 4096, 1, 8, 4096},
        GeometryCase{"odd_size_not_a_block_multiple", (777ull << 20) + 512 * 3, 3, 8, 4096},
        GeometryCase{"one_gib_plus_a_block", (1ull << 30) + 4096, 2, 16, 4096},
        GeometryCase{"block_size_1k", 300ull << 20, 2, 8, 1024},
        GeometryCase{"block_size_2k", 300ull << 20, 2, 8, 2048},
        GeometryCase{"block_size_8k", 300ull << 20, 2, 8, 8192},
        GeometryCase{"block_size_64k", 1ull << 30, 2, 8, 65536},
        GeometryCase{"max_journals", 40ull << 30, 256, 8, 4096},
        GeometryCase{"one_tib_defaults", 1ull << 40, 8, 128, 4096},
        GeometryCase{"sixteen_tib", 16ull << 40, 8, 128, 4096}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Mkfs, RefusesADeviceTooSmallForTheJournals) {
  auto dev = make_memory_device(10ull << 20);  // 1 MiB short of the smallest layout
  auto sb = plan_filesystem(*dev, options(1, 8));
  ASSERT_FALSE(sb);
  EXPECT_EQ(sb.err(), ENOSPC);
  EXPECT_NE(sb.status().message().find("too small"), std::string::npos) << sb.status().message();
  auto big = make_memory_device(1ull << 30);
  auto many = plan_filesystem(*big, options(8, 128));
  ASSERT_FALSE(many);
  EXPECT_NE(many.status().message().find("8 journals of 128 MiB"), std::string::npos) << many.status().message();
}

TEST(Mkfs, DefaultJournalsShrinkOnSmallDevicesAndStay128MiBOnBigOnes) {
  MkfsOptions o = options();
  o.journals = 8;
  o.journal_mib.reset();
  auto small = make_memory_device(1ull << 30);
  auto sb = plan_filesystem(*small, o);
  ASSERT_TRUE(sb) << sb.status().to_string();
  EXPECT_EQ(uint64_t{sb->geometry.journal_blocks} * 4096, 32ull << 20);
  auto big = make_memory_device(1ull << 40);
  sb = plan_filesystem(*big, o);
  ASSERT_TRUE(sb);
  EXPECT_EQ(uint64_t{sb->geometry.journal_blocks} * 4096, 128ull << 20);
  EXPECT_EQ(uint64_t{sb->geometry.rgrp_blocks} * 4096, 1ull << 30);
}

TEST(Mkfs, WritesOnlyWhatTheFormatNeeds) {
  // A 1 TiB sparse file must stay sparse: a few MiB, not the journals or the bitmaps.
  TempFile file(1ull << 40);
  std::string out;
  ASSERT_EQ(run_command(kMkfs + " -q -t lab:vmstore " + file.path(), &out), 0) << out;
  struct stat st {};
  ASSERT_EQ(stat(file.path().c_str(), &st), 0);
  EXPECT_LT(uint64_t(st.st_blocks) * 512, 16ull << 20);
}

// A device whose writes can be made to fail from the Nth on.
struct FailingDevice : BlockDevice {
  BlockDevice& inner;
  int writes = 0, fail_from = -1;
  explicit FailingDevice(BlockDevice& d) : inner(d) {}
  uint64_t size_bytes() const override { return inner.size_bytes(); }
  uint32_t io_alignment() const override { return inner.io_alignment(); }
  Status read(uint64_t o, std::span<std::byte> b) override { return inner.read(o, b); }
  Status write(uint64_t o, std::span<const std::byte> b) override {
    if (++writes >= fail_from && fail_from > 0) return error(EIO, "injected");
    return inner.write(o, b);
  }
  Status flush() override { return inner.flush(); }
  std::string describe() const override { return "failing"; }
};

TEST(Mkfs, InterruptedFormatLeavesNoValidFileSystem) {
  // The superblocks are written last, backup then primary, each after a flush: a format
  // that stops before them leaves a device fsck does not take for lunfs; one that stops
  // between them leaves a complete file system that fsck finds through the backup.
  auto sizing = make_memory_device(256ull << 20);
  auto sb = plan_filesystem(*sizing, options());
  ASSERT_TRUE(sb);
  FailingDevice counting(*sizing);
  ASSERT_TRUE(write_filesystem(counting, *sb));
  const int total = counting.writes;
  for (int fail_from = 1; fail_from <= total; ++fail_from) {
    auto mem = make_memory_device(256ull << 20);
    FailingDevice failing(*mem);
    failing.fail_from = fail_from;
    EXPECT_EQ(write_filesystem(failing, *sb).err(), EIO);
    auto report = check_filesystem(*mem);
    if (fail_from < total) {
      ASSERT_FALSE(report) << "stopped at write " << fail_from << " of " << total;
      EXPECT_NE(report.status().message().find("not a lunfs device"), std::string::npos) << report.status().message();
    } else {
      ASSERT_TRUE(report) << report.status().to_string();
      EXPECT_EQ(report->errors(), 1u);
      EXPECT_TRUE(report->mentions("backup superblock at block"));
    }
  }
}

// ---- The command line ----

struct CliCase {
  const char* name;
  const char* args;
  int exit_code;
  const char* message;
};
void PrintTo(const CliCase& c, std::ostream* os) { *os << c.name; }

class MkfsCli : public ::testing::TestWithParam<CliCase> {};

TEST_P(MkfsCli, RefusesBadArguments) {
  const auto& c = GetParam();
  TempFile file(256 << 20);
  std::string out;
  std::string args = c.args;
  if (auto pos = args.find("DEV"); pos != std::string::npos) args.replace(pos, 3, file.path());
  int rc = run_command(kMkfs + " " + args, &out);
  EXPECT_EQ(rc, c.exit_code) << out;
  EXPECT_NE(out.find(c.message), std::string::npos) << out;
  // Nothing was written.
  auto dev = FileBlockDevice::open(file.path(), {.read_only = true});
  ASSERT_TRUE(dev);
  auto sigs = detect_signatures(**dev);
  ASSERT_TRUE(sigs);
  EXPECT_TRUE(sigs->empty());
}

INSTANTIATE_TEST_SUITE_P(
    Arguments, MkfsCli,
    ::testing::Values(
        CliCase{"unknown_option", "-Z -t a:b DEV", 2, "unknown option -Z"},
        CliCase{"unknown_long_option", "--frobnicate -t a:b DEV", 2, "unknown option --frobnicate"},
        CliCase{"missing_lock_table", "DEV", 2, "-t CLUSTER:FSNAME is required"},
        CliCase{"lock_table_without_colon", "-t abc DEV", 2, "CLUSTER:FSNAME"},
        CliCase{"name_with_space", "-t 'my cluster:fs' DEV", 2, "1-32 characters"},
        CliCase{"empty_fs_name", "-t cluster: DEV", 2, "1-32 characters"},
        CliCase{"name_too_long", "-t c:abcdefghijklmnopqrstuvwxyz0123456 DEV", 2, "1-32 characters"},
        CliCase{"zero_journals", "-t a:b -j 0 DEV", 2, "-j wants"},
        CliCase{"too_many_journals", "-t a:b -j 257 DEV", 2, "-j wants"},
        CliCase{"journal_too_small", "-t a:b -J 4 DEV", 2, "-J wants"},
        CliCase{"journal_not_a_number", "-t a:b -J 12x DEV", 2, "-J wants"},
        CliCase{"block_size_not_power_of_two", "-t a:b -b 3000 DEV", 2, "power of two"},
        CliCase{"block_size_too_large", "-t a:b -b 131072 DEV", 2, "power of two"},
        CliCase{"rgrp_too_small", "-t a:b -r 16 DEV", 2, "-r wants"},
        CliCase{"label_too_long", "-t a:b -L 0123456789012345678901234567890123456789012345678901234567890123 DEV", 2, "label longer"},
        CliCase{"bad_uuid", "-t a:b -U not-a-uuid DEV", 2, "is not a UUID"},
        CliCase{"no_device", "-t a:b", 2, "no device given"},
        CliCase{"two_devices", "-t a:b DEV DEV", 2, "more than one device"},
        CliCase{"missing_option_value", "DEV -t", 2, "needs a value"},
        CliCase{"device_does_not_exist", "-t a:b /nonexistent/lun", 1, "cannot open /nonexistent/lun"},
        CliCase{"device_too_small_for_journals", "-t a:b -j 8 -J 128 DEV", 1, "too small"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(MkfsCli, PrintsASummaryAndTheResultChecksClean) {
  TempFile file(2ull << 30);
  std::string out;
  ASSERT_EQ(run_command(kMkfs + " -t prod:images -j 4 -L 'VM store' -U 0a0b0c0d-0000-4000-8000-000000000001 " + file.path(), &out), 0) << out;
  EXPECT_NE(out.find("Journals:                  4"), std::string::npos) << out;
  EXPECT_NE(out.find("Lock table:                \"prod:images\""), std::string::npos) << out;
  EXPECT_NE(out.find("0a0b0c0d-0000-4000-8000-000000000001"), std::string::npos) << out;
  EXPECT_NE(out.find("\"VM store\""), std::string::npos) << out;
  ASSERT_EQ(run_command(kFsck + " -n " + file.path(), &out), 0) << out;
  EXPECT_NE(out.find("0 error(s)"), std::string::npos) << out;
}

TEST(MkfsCli, DryRunWritesNothing) {
  TempFile file(1ull << 30);
  std::string out;
  ASSERT_EQ(run_command(kMkfs + " -n -t a:b " + file.path(), &out), 0) << out;
  EXPECT_NE(out.find("Dry run"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(stat(file.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_blocks, 0);
}

TEST(MkfsCli, QuietPrintsNothing) {
  TempFile file(1ull << 30);
  std::string out;
  ASSERT_EQ(run_command(kMkfs + " -q -t a:b " + file.path(), &out), 0) << out;
  EXPECT_EQ(out, "");
}

// ---- Existing signatures ----

void put_bytes(const std::string& path, uint64_t offset, const std::string& bytes) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct SignatureCase {
  const char* name;
  const char* make;  // a command making it ("FILE" is replaced), or empty: bytes below
  uint64_t offset;
  std::string bytes;
  const char* what;
};
void PrintTo(const SignatureCase& c, std::ostream* os) { *os << c.name; }

class MkfsSignatures : public ::testing::TestWithParam<SignatureCase> {};

TEST_P(MkfsSignatures, RefusesWithoutForceAndFormatsWithIt) {
  const auto& c = GetParam();
  TempFile file(512 << 20);
  std::string out;
  if (c.make[0]) {
    std::string cmd = c.make;
    cmd.replace(cmd.find("FILE"), 4, file.path());
    if (cmd.rfind("mkfs.lunfs", 0) == 0) cmd.replace(0, 10, kMkfs);
    std::string tool = cmd.substr(0, cmd.find(' '));
    if (run_command("command -v " + tool) != 0) GTEST_SKIP() << tool << " is not installed";
    ASSERT_EQ(run_command(cmd, &out), 0) << out;
  } else {
    put_bytes(file.path(), c.offset, c.bytes);
  }
  EXPECT_EQ(run_command(kMkfs + " -t a:b " + file.path(), &out), 1) << out;
  EXPECT_NE(out.find(std::string("contains a ") + c.what), std::string::npos) << out;
  EXPECT_NE(out.find("use -f"), std::string::npos) << out;
  ASSERT_EQ(run_command(kMkfs + " -q -f -t a:b " + file.path(), &out), 0) << out;
  auto dev = FileBlockDevice::open(file.path(), {.read_only = true});
  ASSERT_TRUE(dev);
  auto sigs = detect_signatures(**dev);
  ASSERT_TRUE(sigs);
  ASSERT_EQ(sigs->size(), 1u) << "old signatures must be wiped";
  EXPECT_EQ(sigs->front().what, "lunfs file system");
  ASSERT_EQ(run_command(kFsck + " -n " + file.path(), &out), 0) << out;
}

INSTANTIATE_TEST_SUITE_P(
    Existing, MkfsSignatures,
    ::testing::Values(
        SignatureCase{"lunfs", "mkfs.lunfs -q -t x:y FILE", 0, "", "lunfs file system"},
        SignatureCase{"ext4", "mkfs.ext4 -q -F FILE", 0, "", "ext4 file system"},
        SignatureCase{"gfs2", "mkfs.gfs2 -O -p lock_nolock -j 1 FILE", 0, "", "GFS2 file system"},
        SignatureCase{"ocfs2", "mkfs.ocfs2 -q -M local -N 2 FILE", 0, "", "OCFS2 file system"},
        SignatureCase{"xfs", "", 0, "XFSB", "XFS file system"},
        SignatureCase{"lvm2", "", 512, std::string("LABELONE") + std::string(16, '\0') + "LVM2 001", "LVM2 physical volume"},
        SignatureCase{"gpt", "", 512, "EFI PART", "GPT partition table"},
        SignatureCase{"mbr", "", 510, "\x55\xaa", "DOS partition table"},
        SignatureCase{"luks", "", 0, "LUKS\xba\xbe", "LUKS encrypted volume"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(MkfsCli, SixteenTibSparseFileFormatsAndChecksFast) {
  // ext4 caps files at 16 TiB - 4 KiB; take the largest the host allows.
  std::unique_ptr<TempFile> file;
  for (uint64_t size : {16ull << 40, (16ull << 40) - 4096}) {
    try {
      file = std::make_unique<TempFile>(size);
      break;
    } catch (const std::exception&) {
    }
  }
  ASSERT_TRUE(file) << "cannot create a 16 TiB sparse file here";
  std::string out;
  ASSERT_EQ(run_command(kMkfs + " -q -t a:b " + file->path(), &out), 0) << out;
  ASSERT_EQ(run_command(kFsck + " -n " + file->path(), &out), 0) << out;
  EXPECT_NE(out.find("0 error(s)"), std::string::npos) << out;
}

TEST(MkfsCli, WorksOnALoopDevice) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for losetup";
  TempFile file(1ull << 30);
  testing::LoopDevice loop(file.path());
  if (loop.path().empty()) GTEST_SKIP() << "no loop device available (losetup failed)";
  std::string out;
  ASSERT_EQ(run_command(kMkfs + " -t lab:loop " + loop.path(), &out), 0) << out;
  EXPECT_NE(out.find("block device"), std::string::npos) << out;
  ASSERT_EQ(run_command(kFsck + " -n -v " + loop.path(), &out), 0) << out;
  EXPECT_NE(out.find("Phase 7"), std::string::npos) << out;
}

}  // namespace
}  // namespace lunfs

// The device layer: file and block devices with O_DIRECT, alignment rules, the O_DIRECT
// fallback, and the fault-injecting device's power-loss and error semantics.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "fs/device/aligned_buffer.h"
#include "fs/device/block_device.h"
#include "fs/device/testing/fault_device.h"
#include "tests/support/temp_file.h"

namespace lunfs {
namespace {

std::vector<std::byte> pattern(size_t n, uint8_t seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = std::byte(static_cast<uint8_t>(seed + i * 7));
  return v;
}

TEST(FileDevice, ReadsBackWhatItWroteWithDirectIo) {
  testing::TempFile file(8 << 20);
  auto dev = FileBlockDevice::open(file.path());
  ASSERT_TRUE(dev) << dev.status().to_string();
  EXPECT_EQ((*dev)->size_bytes(), 8u << 20);
  EXPECT_FALSE((*dev)->is_block_device());
  AlignedBuffer out(64 * 1024), in(64 * 1024);
  auto p = pattern(out.size(), 3);
  std::memcpy(out.data(), p.data(), p.size());
  ASSERT_TRUE((*dev)->write(1 << 20, out.span()));
  ASSERT_TRUE((*dev)->flush());
  ASSERT_TRUE((*dev)->read(1 << 20, in.span()));
  EXPECT_EQ(std::memcmp(in.data(), out.data(), out.size()), 0);
}

TEST(FileDevice, UnalignedMemoryIsBouncedNotRefused) {
  // libfuse 3.14 hands write data at an unaligned address; the device must cope.
  testing::TempFile file(4 << 20);
  auto dev = FileBlockDevice::open(file.path());
  ASSERT_TRUE(dev);
  std::vector<std::byte> raw(8192 + 80);
  auto p = pattern(8192, 9);
  std::memcpy(raw.data() + 80, p.data(), p.size());
  ASSERT_TRUE((*dev)->write(4096, std::span(raw.data() + 80, 8192)));
  std::vector<std::byte> back(8192 + 16);
  ASSERT_TRUE((*dev)->read(4096, std::span(back.data() + 16, 8192)));
  EXPECT_EQ(std::memcmp(back.data() + 16, p.data(), 8192), 0);
}

TEST(FileDevice, MisalignedOffsetsAndRangesBeyondTheEndAreErrors) {
  testing::TempFile file(1 << 20);
  auto dev = FileBlockDevice::open(file.path());
  ASSERT_TRUE(dev);
  AlignedBuffer buf(4096);
  EXPECT_EQ((*dev)->write(100, buf.span()).err(), EINVAL);
  EXPECT_EQ((*dev)->read(0, buf.span().first(100)).err(), EINVAL);
  EXPECT_EQ((*dev)->read(1 << 20, buf.span()).err(), ENOSPC);
  EXPECT_EQ((*dev)->write((1 << 20) - 2048, buf.span()).err(), ENOSPC);
}

TEST(FileDevice, ReadOnlyDeviceRefusesWrites) {
  testing::TempFile file(1 << 20);
  auto dev = FileBlockDevice::open(file.path(), {.read_only = true});
  ASSERT_TRUE(dev);
  AlignedBuffer buf(4096);
  EXPECT_EQ((*dev)->write(0, buf.span()).err(), EROFS);
}

TEST(FileDevice, MissingPathAndDirectoriesAreClearErrors) {
  auto missing = FileBlockDevice::open("/nonexistent/lun.img");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.err(), ENOENT);
  EXPECT_NE(missing.status().to_string().find("/nonexistent/lun.img"), std::string::npos);
  auto dir = FileBlockDevice::open("/tmp", {.read_only = true});
  ASSERT_FALSE(dir);
}

TEST(FileDevice, FallsBackToBufferedIoWhereODirectIsRefused) {
  // ramfs refuses O_DIRECT (tmpfs accepts it on recent kernels).
  if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a ramfs";
  testing::ScratchMount ramfs("ramfs");
  ASSERT_FALSE(ramfs.path().empty()) << "mounting a ramfs failed";
  testing::TempFile file(1 << 20, ramfs.path());
  auto dev = FileBlockDevice::open(file.path());
  ASSERT_TRUE(dev) << dev.status().to_string();
  EXPECT_FALSE((*dev)->direct_io());
  EXPECT_NE((*dev)->fallback_note().find("O_DIRECT"), std::string::npos);
  AlignedBuffer buf(4096);
  buf.span()[0] = std::byte{42};
  ASSERT_TRUE((*dev)->write(0, buf.span()));
  ASSERT_TRUE((*dev)->flush());
  AlignedBuffer back(4096);
  ASSERT_TRUE((*dev)->read(0, back.span()));
  EXPECT_EQ(back.span()[0], std::byte{42});
}

TEST(FileDevice, LoopBlockDeviceReportsItsSize) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root for losetup";
  testing::TempFile file(32 << 20);
  testing::LoopDevice loop(file.path());
  if (loop.path().empty()) GTEST_SKIP() << "no loop device available (losetup failed)";
  auto dev = FileBlockDevice::open(loop.path());
  ASSERT_TRUE(dev) << dev.status().to_string();
  EXPECT_TRUE((*dev)->is_block_device());
  EXPECT_EQ((*dev)->size_bytes(), 32u << 20);
  AlignedBuffer buf(4096);
  buf.span()[7] = std::byte{7};
  ASSERT_TRUE((*dev)->write(8192, buf.span()));
  ASSERT_TRUE((*dev)->flush());
}

TEST(FaultDevice, PowerLossDropsUnflushedWrites) {
  auto mem = make_memory_device(1 << 20);
  FaultInjectingDevice dev(*mem);
  auto a = pattern(4096, 1), b = pattern(4096, 2);
  ASSERT_TRUE(dev.write(0, a));
  ASSERT_TRUE(dev.flush());
  ASSERT_TRUE(dev.write(4096, b));
  std::vector<std::byte> back(4096);
  ASSERT_TRUE(dev.read(4096, back));
  EXPECT_EQ(back, b) << "reads must see the volatile cache";
  ASSERT_TRUE(dev.crash());
  ASSERT_TRUE(dev.read(0, back));
  EXPECT_EQ(back, a) << "flushed data survives";
  ASSERT_TRUE(dev.read(4096, back));
  EXPECT_EQ(back, std::vector<std::byte>(4096)) << "unflushed data is lost";
}

TEST(FaultDevice, CrashKeepsAPrefixAndTearsTheNextWrite) {
  auto mem = make_memory_device(1 << 20);
  FaultInjectingDevice dev(*mem);
  auto a = pattern(4096, 1), b = pattern(4096, 2), c = pattern(4096, 3);
  ASSERT_TRUE(dev.write(0, a));
  ASSERT_TRUE(dev.write(4096, b));
  ASSERT_TRUE(dev.write(8192, c));
  EXPECT_EQ(dev.pending_writes(), 3u);
  ASSERT_TRUE(dev.crash(1, 3));  // a survives, 3 sectors of b, nothing of c
  std::vector<std::byte> back(4096);
  ASSERT_TRUE(mem->read(0, back));
  EXPECT_EQ(back, a);
  ASSERT_TRUE(mem->read(4096, back));
  EXPECT_TRUE(std::equal(back.begin(), back.begin() + 1536, b.begin()));
  EXPECT_EQ(std::count(back.begin() + 1536, back.end(), std::byte{0}), 4096 - 1536);
  ASSERT_TRUE(mem->read(8192, back));
  EXPECT_EQ(back, std::vector<std::byte>(4096));
}

TEST(FaultDevice, CrashWithReorderedSubset) {
  auto mem = make_memory_device(1 << 20);
  FaultInjectingDevice dev(*mem);
  auto a = pattern(512, 1), b = pattern(512, 2);
  ASSERT_TRUE(dev.write(0, a));
  ASSERT_TRUE(dev.write(512, b));
  ASSERT_TRUE(dev.crash_with_subset({false, true}));  // the later write made it, the earlier not
  std::vector<std::byte> back(512);
  ASSERT_TRUE(mem->read(0, back));
  EXPECT_EQ(back, std::vector<std::byte>(512));
  ASSERT_TRUE(mem->read(512, back));
  EXPECT_EQ(back, b);
}

TEST(FaultDevice, InjectsErrorsAtChosenPoints) {
  auto mem = make_memory_device(1 << 20);
  FaultInjectingDevice dev(*mem);
  std::vector<std::byte> buf(4096);
  dev.fail_nth(IoKind::kWrite, 2, EIO);
  EXPECT_TRUE(dev.write(0, buf));
  EXPECT_EQ(dev.write(4096, buf).err(), EIO);
  EXPECT_TRUE(dev.write(8192, buf)) << "fail_nth is one-shot";
  dev.fail_range(IoKind::kRead, 65536, 4096, ENOSPC);
  EXPECT_TRUE(dev.read(0, buf));
  EXPECT_EQ(dev.read(65536 - 2048, std::span(buf).first(4096)).err(), ENOSPC);
  dev.fail_nth(IoKind::kFlush, 1);
  EXPECT_EQ(dev.flush().err(), EIO);
  EXPECT_EQ(dev.pending_writes(), 2u) << "a failed flush must not pretend the data is durable";
  dev.clear_faults();
  EXPECT_TRUE(dev.read(65536, buf));
  EXPECT_TRUE(dev.flush());
  EXPECT_EQ(dev.pending_writes(), 0u);
}

TEST(MemoryDevice, SparseHugeDeviceCostsOnlyWhatIsWritten) {
  auto dev = make_memory_device(16ull << 40);
  std::vector<std::byte> buf(4096, std::byte{5});
  ASSERT_TRUE(dev->write((16ull << 40) - 4096, buf));
  std::vector<std::byte> back(4096);
  ASSERT_TRUE(dev->read((16ull << 40) - 4096, back));
  EXPECT_EQ(back, buf);
  ASSERT_TRUE(dev->read(1ull << 40, back));
  EXPECT_EQ(back, std::vector<std::byte>(4096));
}

}  // namespace
}  // namespace lunfs

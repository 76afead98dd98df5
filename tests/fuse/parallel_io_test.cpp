// Concurrent direct writes to one image through a real mount, as QEMU issues them with
// aio=threads (blocking pwrite from many threads on one fd). Direct opens allow parallel
// direct writes (fuse/open_reply.h), so the daemon serves several writes to one file at
// once; every block must still end up holding the data written to it last.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fs/device/aligned_buffer.h"
#include "tests/fuse/mount_fixture.h"

namespace lunfs::testing {
namespace {

using ParallelDirectIo = LunfsMount;

constexpr size_t kBlock = 4096;
constexpr int kThreads = 8;
constexpr size_t kBlocksPerThread = 256;

// The byte that writer `t` puts into block `b` on pass `pass`.
std::byte pattern(int t, size_t b, int pass) { return std::byte(static_cast<uint8_t>(1 + t * 31 + b * 7 + pass * 101)); }

// kThreads writers, each owning the blocks b with b % kThreads == t, write their blocks in
// two passes (the second overwrites the first), with O_DIRECT through one shared fd.
void write_concurrently(int fd) {
  std::vector<std::thread> writers;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([fd, t, &failures] {
      AlignedBuffer buf(kBlock);
      for (int pass = 0; pass < 2; ++pass) {
        for (size_t i = 0; i < kBlocksPerThread; ++i) {
          size_t b = i * kThreads + static_cast<size_t>(t);
          std::memset(buf.data(), static_cast<int>(pattern(t, b, pass)), kBlock);
          if (pwrite(fd, buf.data(), kBlock, static_cast<off_t>(b * kBlock)) != static_cast<ssize_t>(kBlock)) {
            ++failures[static_cast<size_t>(t)];
          }
        }
      }
    });
  }
  for (auto& w : writers) w.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[static_cast<size_t>(t)], 0) << "writer " << t;
}

void expect_last_pass(const std::string& file) {
  int fd = open(file.c_str(), O_RDONLY | O_DIRECT);
  ASSERT_GE(fd, 0) << strerror(errno);
  AlignedBuffer buf(kBlock);
  size_t wrong = 0;
  for (size_t b = 0; b < kBlocksPerThread * kThreads; ++b) {
    ASSERT_EQ(pread(fd, buf.data(), kBlock, static_cast<off_t>(b * kBlock)), static_cast<ssize_t>(kBlock));
    std::byte want = pattern(static_cast<int>(b % kThreads), b, 1);
    for (size_t i = 0; i < kBlock; ++i) {
      if (buf.data()[i] != want) {
        ++wrong;
        break;
      }
    }
  }
  close(fd);
  EXPECT_EQ(wrong, 0u) << "blocks without the last data written to them";
}

// The VM-image case: the image is written in full first, so every write is an overwrite.
TEST_F(ParallelDirectIo, OverwritesOfAWrittenImageFromManyThreads) {
  const std::string img = path("img");
  const size_t size = kBlock * kBlocksPerThread * kThreads;
  {
    int fd = open(img.c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0) << strerror(errno);
    std::vector<char> zeros(size, 0);
    ASSERT_EQ(write(fd, zeros.data(), size), static_cast<ssize_t>(size));
    ASSERT_EQ(close(fd), 0);
  }
  int fd = open(img.c_str(), O_RDWR | O_DIRECT);
  ASSERT_GE(fd, 0) << strerror(errno);
  write_concurrently(fd);
  ASSERT_EQ(close(fd), 0);
  expect_last_pass(img);
}

// A thin image: the first pass allocates (transactions) while other threads overwrite.
TEST_F(ParallelDirectIo, AllocatingWritesToAThinImageFromManyThreads) {
  const std::string img = path("thin");
  int fd = open(img.c_str(), O_RDWR | O_CREAT | O_DIRECT, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(kBlock * kBlocksPerThread * kThreads)), 0);
  write_concurrently(fd);
  ASSERT_EQ(close(fd), 0);
  expect_last_pass(img);
  struct stat st;
  ASSERT_EQ(stat(img.c_str(), &st), 0);
  EXPECT_GE(static_cast<size_t>(st.st_blocks) * 512, kBlock * kBlocksPerThread * kThreads);
}

}  // namespace
}  // namespace lunfs::testing

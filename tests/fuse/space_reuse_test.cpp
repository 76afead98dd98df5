// Space reuse through a real mount: a file filling most of a small LUN is deleted and
// written again, round after round. Freed blocks are pinned until the journal commit that
// frees them is durable (docs/core.md, "Deferred reuse"); a writer that needs them must
// get them (the allocator commits and retries) instead of ENOSPC, and statfs must show the
// space free again once the file is gone.
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "tests/fuse/mount_fixture.h"

namespace lunfs::testing {
namespace {

class SmallLun : public LunfsMount {
 protected:
  uint64_t lun_mib() const override { return 128; }

  uint64_t free_bytes() {
    struct statvfs s {};
    EXPECT_EQ(statvfs(mnt_.c_str(), &s), 0);
    return uint64_t{s.f_bavail} * s.f_frsize;
  }

  // Writes `bytes` of a pattern that names the round; the errno of the first failure,
  // 0 when every write and the close succeeded.
  int fill(const std::string& p, uint64_t bytes, char round) {
    int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return errno;
    std::vector<char> chunk(1 << 20, round);
    int err = 0;
    for (uint64_t done = 0; done < bytes && err == 0;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(chunk.size(), bytes - done));
      ssize_t w = write(fd, chunk.data(), n);
      if (w < 0) err = errno;
      else done += static_cast<uint64_t>(w);
    }
    if (close(fd) != 0 && err == 0) err = errno;
    return err;
  }

  // Free space once the daemon has freed an unlinked file: the kernel's forget of the
  // inode arrives asynchronously after unlink.
  uint64_t free_bytes_after_unlink(uint64_t expected) {
    uint64_t now = free_bytes();
    for (int i = 0; i < 200 && now < expected; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      now = free_bytes();
    }
    return now;
  }
};

TEST_F(SmallLun, FillDeleteRefillNeverRunsOutOfSpace) {
  const uint64_t empty = free_bytes();
  const uint64_t size = empty / 10 * 9;
  ASSERT_GT(size, uint64_t{64} << 20) << "the LUN leaves too little room to fill";
  const std::string file = path("image");
  for (char round = 'a'; round < 'e'; ++round) {
    const int err = fill(file, size, round);
    ASSERT_EQ(err, 0) << "round " << round << ": " << std::strerror(err);
    EXPECT_LT(free_bytes(), empty - size + (uint64_t{1} << 20)) << "round " << round << ": the file takes no space";
    // No sync between the unlink and the next round: the blocks it needs are still
    // pinned by the uncommitted unlink. statfs counts them free at once (the file's data
    // and extent tree; a few blocks of directory bookkeeping may differ).
    ASSERT_EQ(unlink(file.c_str()), 0);
    EXPECT_GT(free_bytes_after_unlink(empty), empty - (uint64_t{64} << 10)) << "round " << round;
  }
  // And after a sync, which commits the journal: every block is free again.
  sync();
  EXPECT_GT(free_bytes(), empty - (uint64_t{64} << 10));
}

}  // namespace
}  // namespace lunfs::testing

// FencedDevice (issue 13): after fence() nothing more reaches the LUN — synchronous writes,
// flushes and the asynchronous data queue (a file device's Linux AIO) all fail with EIO
// naming the reason — while reads go on and everything written before stays.
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <fstream>
#include <vector>
#include <mutex>

#include "fs/device/aligned_buffer.h"
#include "fs/device/block_device.h"
#include "fs/device/fenced_device.h"
#include "fs/device/write_log_device.h"
#include "tests/support/temp_file.h"

namespace lunfs {
namespace {

struct Done final : IoCompletion {
  void io_done(Status st) override {
    std::lock_guard lock(mu);
    status = st;
    finished = true;
    cv.notify_all();
  }
  Status wait() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return finished; });
    finished = false;
    return status;
  }
  std::mutex mu;
  std::condition_variable cv;
  bool finished = false;
  Status status;
};

TEST(FencedDevice, AfterTheFenceNoWriteReachesTheLunButReadsGoOn) {
  testing::TempFile file(4 << 20);
  auto dev = FileBlockDevice::open(file.path());
  ASSERT_TRUE(dev) << dev.status().to_string();
  FencedDevice fenced(**dev);
  auto queue = fenced.make_io_queue();

  AlignedBuffer a(4096), b(4096), in(4096);
  std::memset(a.data(), 'a', a.size());
  std::memset(b.data(), 'b', b.size());
  ASSERT_TRUE(fenced.write(0, a.span()));
  IoTransfer queued{IoTransfer::Kind::kWrite, 8192, a.span()};
  Done done;
  queue->submit({&queued, 1}, done);
  ASSERT_TRUE(done.wait());
  ASSERT_TRUE(fenced.flush());

  fenced.fence("the lock space failed");
  EXPECT_TRUE(fenced.fenced());
  Status w = fenced.write(0, b.span());
  EXPECT_EQ(w.err(), EIO);
  EXPECT_NE(w.message().find("the lock space failed"), std::string::npos) << w.to_string();
  EXPECT_EQ(fenced.flush().err(), EIO);
  IoTransfer late{IoTransfer::Kind::kWrite, 8192, b.span()};
  queue->submit({&late, 1}, done);
  EXPECT_EQ(done.wait().err(), EIO);
  fenced.fence("a second reason");  // the first one stays
  EXPECT_EQ(fenced.why(), "the lock space failed");

  // Reads, through the device and the queue, still work and find the writes from before.
  ASSERT_TRUE(fenced.read(0, in.span()));
  EXPECT_EQ(std::memcmp(in.data(), a.data(), in.size()), 0);
  IoTransfer read{IoTransfer::Kind::kRead, 8192, in.span()};
  queue->submit({&read, 1}, done);
  ASSERT_TRUE(done.wait());
  EXPECT_EQ(std::memcmp(in.data(), a.data(), in.size()), 0);
  ASSERT_TRUE((*dev)->read(0, in.span()));  // past the fence, on the file itself
  EXPECT_EQ(std::memcmp(in.data(), a.data(), in.size()), 0);
}

// The write log under the fence records what got past it, and nothing else: the writes
// and flush before the fence (synchronous and queued, with offsets and lengths, completion
// after submission), no read, none of the refused writes.
TEST(WriteLogDevice, RecordsEveryWriteAndFlushThatReachedTheDevice) {
  testing::TempFile file(4 << 20);
  testing::TempFile log_file(0);
  auto dev = FileBlockDevice::open(file.path());
  ASSERT_TRUE(dev) << dev.status().to_string();
  auto recorded = WriteLogDevice::open(**dev, log_file.path());
  ASSERT_TRUE(recorded) << recorded.status().to_string();
  FencedDevice fenced(**recorded);
  auto queue = fenced.make_io_queue();
  AlignedBuffer a(4096), in(4096);
  std::memset(a.data(), 'a', a.size());
  const uint64_t before = WriteLogDevice::now_ns();
  ASSERT_TRUE(fenced.write(4096, a.span()));
  IoTransfer queued{IoTransfer::Kind::kWrite, 3 * 4096, a.span()};
  Done done;
  queue->submit({&queued, 1}, done);
  ASSERT_TRUE(done.wait());
  ASSERT_TRUE(fenced.flush());
  ASSERT_TRUE(fenced.read(0, in.span()));
  IoTransfer read{IoTransfer::Kind::kRead, 0, in.span()};
  queue->submit({&read, 1}, done);
  ASSERT_TRUE(done.wait());
  fenced.fence("the test");
  EXPECT_FALSE(fenced.write(0, a.span()));
  const uint64_t after = WriteLogDevice::now_ns();

  std::ifstream f(log_file.path());
  std::vector<std::string> kinds;
  std::vector<uint64_t> offsets, lengths;
  char kind;
  uint64_t submitted, completed, offset, bytes;
  int err;
  while (f >> kind >> submitted >> completed >> offset >> bytes >> err) {
    EXPECT_LE(before, submitted);
    EXPECT_LE(submitted, completed);
    EXPECT_LE(completed, after);
    EXPECT_EQ(err, 0);
    kinds.push_back(std::string(1, kind));
    offsets.push_back(offset);
    lengths.push_back(bytes);
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"W", "W", "F"}));
  EXPECT_EQ(offsets, (std::vector<uint64_t>{4096, 3 * 4096, 0}));
  EXPECT_EQ(lengths, (std::vector<uint64_t>{4096, 4096, 0}));
}

// The reap hook set on the queue of the stack mount.lunfs builds (the fence over the write
// log over the LUN) runs after every batch, the ones that went through and the ones the
// fence refused: the core finishes its allocating writes in it.
TEST(FencedDevice, TheQueuesReapHookRunsAfterPassedAndRefusedBatches) {
  testing::TempFile log_file(0);
  auto lun = make_memory_device(1 << 20);
  auto recorded = WriteLogDevice::open(*lun, log_file.path());
  ASSERT_TRUE(recorded) << recorded.status().to_string();
  FencedDevice fenced(**recorded);
  auto queue = fenced.make_io_queue();
  int hooks = 0;
  queue->set_reap_hook([&] { ++hooks; });
  AlignedBuffer a(4096);
  std::memset(a.data(), 'a', a.size());
  IoTransfer queued{IoTransfer::Kind::kWrite, 8192, a.span()};
  Done done;
  queue->submit({&queued, 1}, done);
  ASSERT_TRUE(done.wait());
  EXPECT_EQ(hooks, 1);
  fenced.fence("the test");
  queue->submit({&queued, 1}, done);
  EXPECT_EQ(done.wait().err(), EIO);
  EXPECT_EQ(hooks, 2);
}

}  // namespace
}  // namespace lunfs

// FencedDevice (issue 13): after fence() nothing more reaches the LUN — synchronous writes,
// flushes and the asynchronous data queue (a file device's Linux AIO) all fail with EIO
// naming the reason — while reads go on and everything written before stays.
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <mutex>

#include "fs/device/aligned_buffer.h"
#include "fs/device/block_device.h"
#include "fs/device/fenced_device.h"
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

}  // namespace
}  // namespace lunfs

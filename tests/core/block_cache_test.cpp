// The metadata block cache and its image buffers: a block that is read again survives a
// stream of blocks used once (CLOCK), one that is not goes; image buffers are recycled
// zeroed; and an image outlives the pool that made it (the journal may hold images past
// unmount).
#include <gtest/gtest.h>

#include <cstring>

#include "fs/core/block_cache.h"

namespace lunfs {
namespace {

constexpr uint32_t kBlock = 1024;

class BlockCacheTest : public ::testing::Test {
 protected:
  // Writes `fill` over the home location of `blocknr`, behind the cache's back.
  void write_home(uint64_t blocknr, std::byte fill) {
    AlignedBuffer buf(kBlock);
    std::memset(buf.data(), static_cast<int>(fill), kBlock);
    ASSERT_TRUE(dev_->write(blocknr * kBlock, buf.span()));
  }
  // The first byte of the image the cache gives for `blocknr`.
  std::byte first_byte(BlockCache& cache, uint64_t blocknr) {
    auto img = cache.get(blocknr);
    EXPECT_TRUE(img);
    return img ? (*img)->data()[0] : std::byte{0xEE};
  }

  std::unique_ptr<BlockDevice> dev_ = make_memory_device(uint64_t{1} << 20);
  WriteThroughLog log_{*dev_};
};

TEST_F(BlockCacheTest, ABlockReadAgainSurvivesAStreamOfBlocksUsedOnce) {
  BlockCache cache(*dev_, log_, kBlock, 8);
  // Seven blocks read once, then the one that is read again and again: the cache is full.
  for (uint64_t b = 10; b < 17; ++b) {
    write_home(b, std::byte{0x10});
    ASSERT_EQ(first_byte(cache, b), std::byte{0x10});
  }
  write_home(1, std::byte{0x11});
  ASSERT_EQ(first_byte(cache, 1), std::byte{0x11});
  // The home locations change; the cache serves what it holds until it evicts it.
  write_home(1, std::byte{0x1F});
  for (uint64_t b = 10; b < 17; ++b) write_home(b, std::byte{0x1F});
  for (uint64_t b = 100; b < 164; ++b) {
    ASSERT_EQ(first_byte(cache, 1), std::byte{0x11}) << "block 1 evicted while in use, at block " << b;
    (void)first_byte(cache, b);
  }
  EXPECT_EQ(cache.size(), 8u);
  for (uint64_t b = 10; b < 17; ++b) {
    EXPECT_EQ(first_byte(cache, b), std::byte{0x1F}) << "block " << b << ", never read again, stayed";
  }
}

TEST_F(BlockCacheTest, DroppedBlocksAreReadAgainFromHome) {
  BlockCache cache(*dev_, log_, kBlock, 8);
  write_home(3, std::byte{0x33});
  ASSERT_EQ(first_byte(cache, 3), std::byte{0x33});
  write_home(3, std::byte{0x3F});
  cache.drop(3);
  EXPECT_EQ(first_byte(cache, 3), std::byte{0x3F});
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
}

TEST(BlockImagePool, BuffersComeBackZeroedAndOutliveThePool) {
  std::shared_ptr<AlignedBuffer> kept;
  {
    BlockImagePool pool(kBlock, 4);
    auto a = pool.zeroed();
    ASSERT_EQ(a->size(), kBlock);
    EXPECT_TRUE(is_aligned(a->data(), kDirectIoMemoryAlignment));
    std::memset(a->data(), 0xAB, kBlock);
    const std::byte* recycled = a->data();
    a.reset();
    EXPECT_EQ(pool.idle(), 1u);
    auto b = pool.zeroed();
    EXPECT_EQ(b->data(), recycled) << "a released buffer was not reused";
    for (size_t i = 0; i < kBlock; ++i) ASSERT_EQ(b->data()[i], std::byte{0}) << "byte " << i;
    // More buffers returned than the pool keeps: the surplus is freed.
    std::vector<std::shared_ptr<AlignedBuffer>> many;
    for (int i = 0; i < 10; ++i) many.push_back(pool.for_overwrite());
    many.clear();
    EXPECT_EQ(pool.idle(), 4u);
    kept = pool.zeroed();
  }
  // The pool is gone; the image it made is still usable and its release is safe.
  std::memset(kept->data(), 0x5A, kBlock);
  EXPECT_EQ(kept->data()[kBlock - 1], std::byte{0x5A});
  kept.reset();
}

}  // namespace
}  // namespace lunfs

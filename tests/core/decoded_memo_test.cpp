// The memo of decoded metadata blocks (fs/core/decoded_memo.h): a decode is given back only for
// the very image it came from and the same tag, never for a newer image of the block, never
// for a recycled buffer at the same address, and the memo stays within its capacity.
#include <gtest/gtest.h>

#include <string>

#include "fs/core/block_image_pool.h"
#include "fs/core/decoded_memo.h"

namespace lunfs {
namespace {

constexpr uint32_t kBlock = 1024;

TEST(DecodedMemo, GivesBackTheDecodeOfTheSameImageOnly) {
  BlockImagePool pool(kBlock, 8);
  DecodedMemo<std::string> memo(16);
  std::shared_ptr<const AlignedBuffer> first = pool.zeroed();
  memo.remember(7, first, 100, "first");
  EXPECT_EQ(memo.find(7, first, 100), "first");
  EXPECT_EQ(memo.find(7, first, 101), std::nullopt) << "another owner: decode again (and fail there)";
  EXPECT_EQ(memo.find(8, first, 100), std::nullopt);

  std::shared_ptr<const AlignedBuffer> second = pool.zeroed();  // a newer image of block 7
  EXPECT_EQ(memo.find(7, second, 100), std::nullopt);
  memo.remember(7, second, 100, "second");
  EXPECT_EQ(memo.find(7, second, 100), "second");
  EXPECT_EQ(memo.find(7, first, 100), std::nullopt);
}

TEST(DecodedMemo, ARecycledBufferAtTheSameAddressIsNotTheSameImage) {
  BlockImagePool pool(kBlock, 8);
  DecodedMemo<std::string> memo(16);
  std::shared_ptr<const AlignedBuffer> old_image = pool.zeroed();
  const AlignedBuffer* address = old_image.get();
  memo.remember(3, old_image, 1, "old");
  old_image.reset();  // back to the pool
  std::shared_ptr<const AlignedBuffer> recycled = pool.zeroed();
  ASSERT_EQ(recycled.get(), address) << "the pool hands the same buffer out again";
  EXPECT_EQ(memo.find(3, recycled, 1), std::nullopt);
}

TEST(DecodedMemo, StaysWithinItsCapacityAndDropsDeadImagesFirst) {
  BlockImagePool pool(kBlock, 0);
  DecodedMemo<int> memo(8);
  std::vector<std::shared_ptr<const AlignedBuffer>> alive;
  for (int i = 0; i < 6; ++i) {
    alive.push_back(pool.zeroed());
    memo.remember(i, alive.back(), 0, i);
  }
  for (int i = 6; i < 8; ++i) memo.remember(i, pool.zeroed(), 0, i);  // images gone at once
  ASSERT_EQ(memo.size(), 8u);
  auto newest = pool.zeroed();
  memo.remember(100, newest, 0, 100);
  EXPECT_EQ(memo.size(), 7u) << "the two entries of dead images made room";
  for (int i = 0; i < 6; ++i) EXPECT_EQ(memo.find(i, alive[i], 0), i) << "a live image's decode was dropped";
  for (int i = 0; i < 100; ++i) {
    alive.push_back(pool.zeroed());
    memo.remember(200 + i, alive.back(), 0, i);
    ASSERT_LE(memo.size(), 8u);
  }
}

}  // namespace
}  // namespace lunfs

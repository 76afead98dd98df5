// Many threads submitting, committing, looking up and checkpointing at once (as the FUSE
// frontend's worker threads will): every thread's last committed images are at home after
// the final checkpoint, and lookup never returns an image of another block. Run under TSan.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "journal/journal.h"
#include "tests/journal/journal_fixture.h"

namespace lunfs::journal {
namespace {

using testing::TestFs;

TEST(JournalThreads, ConcurrentSubmitCommitLookupAndCheckpoint) {
  TestFs fs = TestFs::make();
  JournalOptions o;
  o.commit_interval = std::chrono::milliseconds(5);  // the timer races with everyone too
  auto opened = Journal::open(*fs.dev, fs.sb, 0, o);
  ASSERT_TRUE(opened.is_ok());
  Journal& j = **opened;
  constexpr int kThreads = 6, kTxns = 150, kBlocksEach = 4;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      AlignedBuffer out(fs.bs());
      for (int i = 1; i <= kTxns; ++i) {
        TransactionRecord txn;
        for (int k = 0; k < kBlocksEach; ++k) {
          uint64_t b = fs.block(t * kBlocksEach + k);
          txn.blocks.push_back({b, fs.image(b, static_cast<uint8_t>(i))});
        }
        if (!j.submit(std::move(txn)).is_ok()) failures++;
        if (i % 3 == 0 && !j.commit()) failures++;
        if (i % 50 == 0 && !j.checkpoint()) failures++;
        uint64_t b = fs.block(t * kBlocksEach);
        if (j.lookup(b, out.span()) && ondisk::peek_header(out.span()).blocknr != b) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(j.checkpoint());
  for (int b = 0; b < kThreads * kBlocksEach; ++b) EXPECT_EQ(fs.home_fill(fs.block(b)), kTxns);
}

}  // namespace
}  // namespace lunfs::journal

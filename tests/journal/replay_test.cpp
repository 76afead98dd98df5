// Replay of bad journals: garbage, a damaged transaction, a sequence gap, a journal copied
// from another file system — each detected and reported in words, replay stopping at the
// right point, never applying what it cannot trust. And replay is idempotent.
#include "journal/replay.h"

#include <gtest/gtest.h>

#include <random>

#include "journal/check.h"
#include "journal/journal.h"
#include "journal/log_writer.h"
#include "tests/journal/journal_fixture.h"

namespace lunfs::journal {
namespace {

using testing::TestFs;
using namespace std::chrono_literals;

// Commits one single-image transaction per fill (each occupies 3 log blocks), no checkpoint.
void commit_each(TestFs& fs, std::initializer_list<uint8_t> fills, uint32_t slot = 0) {
  JournalOptions o;
  o.commit_interval = 0ms;
  auto j = Journal::open(*fs.dev, fs.sb, slot, o);
  ASSERT_TRUE(j.is_ok()) << j.status().to_string();
  for (uint8_t f : fills) {
    ASSERT_TRUE((*j)->submit(fs.txn({{fs.block(0), f}})).is_ok());
    ASSERT_TRUE((*j)->commit());
  }
}

void flip_byte(TestFs& fs, uint64_t block, size_t offset) {
  AlignedBuffer b(fs.bs());
  ASSERT_TRUE(fs.dev->read(block * fs.bs(), b.span()));
  b.data()[offset] ^= std::byte{0xFF};
  ASSERT_TRUE(fs.dev->write(block * fs.bs(), b.span()));
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

TEST(Replay, GarbageJournalHoldsNoTransactions) {
  TestFs fs = TestFs::make();
  std::mt19937_64 rng(5);
  AlignedBuffer junk(64 * fs.bs());
  for (size_t i = 0; i < junk.size(); ++i) junk.data()[i] = std::byte(rng());
  ASSERT_TRUE(fs.dev->write(fs.sb.geometry.journal(0) * fs.bs(), junk.span()));
  auto r = replay(*fs.dev, fs.sb, 0);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->transactions, 0u);
  EXPECT_EQ(r->end, LogEnd::kClean);
  EXPECT_TRUE(contains(r->to_string(), "no lunfs header")) << r->to_string();
}

TEST(Replay, DamagedTransactionStopsReplayAndFsckSaysCommittedWorkWasLost) {
  TestFs fs = TestFs::make();
  commit_each(fs, {1, 2, 3});
  flip_byte(fs, fs.sb.geometry.journal(0) + 4, 200);  // the image of transaction 2
  JournalCheck check = check_journal(*fs.dev, fs.sb, 0);
  EXPECT_TRUE(check.dirty);
  bool lost = false;
  for (const auto& f : check.findings) lost |= f.error && contains(f.text, "committed transactions were lost");
  EXPECT_TRUE(lost);

  auto r = replay(*fs.dev, fs.sb, 0);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->transactions, 1u);
  EXPECT_EQ(r->end, LogEnd::kTorn);
  EXPECT_TRUE(contains(r->end_reason, "checksum over the transaction does not match")) << r->end_reason;
  EXPECT_EQ(fs.home_fill(fs.block(0)), 1);  // transaction 1 only
}

TEST(Replay, SequenceGapIsDamageAndTheMountRefuses) {
  TestFs fs = TestFs::make();
  commit_each(fs, {1});
  // Transaction 5 right after transaction 1: 2, 3 and 4 are missing.
  const JournalArea area = JournalArea::of(fs.sb, 0);
  std::vector<BlockImage> images{{fs.block(0), fs.image(fs.block(0), 5)}};
  ASSERT_TRUE(write_transaction(*fs.dev, area, 3, 5, images, {}));

  auto r = replay(*fs.dev, fs.sb, 0);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->end, LogEnd::kDamaged);
  EXPECT_TRUE(contains(r->end_reason, "sequence gap")) << r->end_reason;
  EXPECT_TRUE(contains(r->end_reason, "expected transaction 2, found 5")) << r->end_reason;
  EXPECT_FALSE(r->marked_clean);
  EXPECT_EQ(fs.home_fill(fs.block(0)), 1);

  auto j = Journal::open(*fs.dev, fs.sb, 0);
  EXPECT_EQ(j.err(), EIO);
  EXPECT_TRUE(contains(j.status().message(), "sequence gap")) << j.status().message();
  bool reported = false;
  for (const auto& f : check_journal(*fs.dev, fs.sb, 0).findings) reported |= f.error && contains(f.text, "sequence gap");
  EXPECT_TRUE(reported);
}

TEST(Replay, JournalOfAnotherFileSystemIsNotReplayed) {
  TestFs a = TestFs::make(7);
  TestFs b = TestFs::make(9);
  ASSERT_EQ(a.sb.geometry, b.sb.geometry);
  commit_each(a, {1});
  AlignedBuffer log(16 * a.bs());
  ASSERT_TRUE(a.dev->read(a.sb.geometry.journal(0) * a.bs(), log.span()));
  ASSERT_TRUE(b.dev->write(b.sb.geometry.journal(0) * b.bs(), log.span()));
  auto r = replay(*b.dev, b.sb, 0);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->transactions, 0u);
  EXPECT_TRUE(contains(r->end_reason, "another file system")) << r->end_reason;
  EXPECT_EQ(b.home_fill(b.block(0)), -1);
}

TEST(Replay, JournalCopiedToAnotherSlotIsNotReplayed) {
  TestFs fs = TestFs::make();
  commit_each(fs, {1});
  AlignedBuffer log(16 * fs.bs());
  ASSERT_TRUE(fs.dev->read(fs.sb.geometry.journal(0) * fs.bs(), log.span()));
  ASSERT_TRUE(fs.dev->write(fs.sb.geometry.journal(1) * fs.bs(), log.span()));
  auto r = replay(*fs.dev, fs.sb, 1);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->transactions, 0u);
  EXPECT_TRUE(contains(r->end_reason, "journal record written for block")) << r->end_reason;
}

TEST(Replay, IsIdempotent) {
  TestFs fs = TestFs::make();
  commit_each(fs, {1, 2, 3});
  auto first = replay(*fs.dev, fs.sb, 0);
  ASSERT_TRUE(first.is_ok());
  EXPECT_EQ(first->transactions, 3u);
  EXPECT_TRUE(first->marked_clean);
  auto second = replay(*fs.dev, fs.sb, 0);
  ASSERT_TRUE(second.is_ok());
  EXPECT_EQ(second->transactions, 0u);
  EXPECT_EQ(fs.home_fill(fs.block(0)), 3);
  EXPECT_TRUE(check_journal(*fs.dev, fs.sb, 0).findings.empty());
}

TEST(Replay, RefusesAnUndecodableSlotHeader) {
  TestFs fs = TestFs::make();
  flip_byte(fs, fs.sb.geometry.slot_header(0), 40);
  auto r = replay(*fs.dev, fs.sb, 0);
  EXPECT_EQ(r.err(), EIO);
  EXPECT_TRUE(contains(r.status().message(), "slot header")) << r.status().message();
  EXPECT_EQ(replay(*fs.dev, fs.sb, 5).err(), EINVAL);
}

}  // namespace
}  // namespace lunfs::journal

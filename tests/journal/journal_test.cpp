// Journal (MetadataLog) behaviour a file system relies on: committed transactions survive a
// restart, uncommitted ones vanish whole, lookup sees images not yet home, revokes keep old
// images off reused blocks, the log never wedges, bad requests and I/O errors are errors.
#include "journal/journal.h"

#include <gtest/gtest.h>

#include <thread>

#include "fs/device/testing/fault_device.h"
#include "fs/device/testing/recording_device.h"
#include "fsck/checker.h"
#include "journal/check.h"
#include "journal/replay.h"
#include "tests/journal/journal_fixture.h"

namespace lunfs::journal {
namespace {

using testing::TestFs;
using namespace std::chrono_literals;

JournalOptions no_timer() {
  JournalOptions o;
  o.commit_interval = 0ms;
  return o;
}

std::unique_ptr<Journal> open_or_die(TestFs& fs, JournalOptions o = no_timer(), uint32_t slot = 0) {
  auto j = Journal::open(*fs.dev, fs.sb, slot, o);
  EXPECT_TRUE(j.is_ok()) << j.status().to_string();
  return j.is_ok() ? std::move(j.value()) : nullptr;
}

TEST(Journal, FreshJournalOpensWithNothingToReplay) {
  TestFs fs = TestFs::make();
  auto j = open_or_die(fs);
  EXPECT_EQ(j->replay_report().transactions, 0u);
  EXPECT_EQ(j->replay_report().end, LogEnd::kClean);
  EXPECT_NE(j->replay_report().end_reason.find("end of log"), std::string::npos);
}

TEST(Journal, CommittedTransactionIsReplayedAfterRestartWithoutCheckpoint) {
  TestFs fs = TestFs::make();
  {
    auto j = open_or_die(fs);
    ASSERT_TRUE(j->submit(fs.txn({{fs.block(0), 0x11}, {fs.block(1), 0x12}})).is_ok());
    ASSERT_TRUE(j->commit());
  }  // "crash": nothing was checkpointed
  EXPECT_EQ(fs.home_fill(fs.block(0)), -1);
  auto j = open_or_die(fs);
  EXPECT_EQ(j->replay_report().transactions, 1u);
  EXPECT_EQ(j->replay_report().blocks_written, 2u);
  EXPECT_EQ(fs.home_fill(fs.block(0)), 0x11);
  EXPECT_EQ(fs.home_fill(fs.block(1)), 0x12);
}

TEST(Journal, UncommittedTransactionIsNotReplayed) {
  TestFs fs = TestFs::make();
  {
    auto j = open_or_die(fs);
    ASSERT_TRUE(j->submit(fs.txn({{fs.block(0), 0x11}})).is_ok());
  }
  auto j = open_or_die(fs);
  EXPECT_EQ(j->replay_report().transactions, 0u);
  EXPECT_EQ(fs.home_fill(fs.block(0)), -1);
}

TEST(Journal, SequenceContinuesAcrossRestarts) {
  TestFs fs = TestFs::make();
  uint64_t first;
  {
    auto j = open_or_die(fs);
    first = j->submit(fs.txn({{fs.block(0), 1}})).value();
    ASSERT_TRUE(j->commit());
  }
  auto j = open_or_die(fs);
  uint64_t second = j->submit(fs.txn({{fs.block(0), 2}})).value();
  EXPECT_GT(second, first);
  ASSERT_TRUE(j->commit());
  j.reset();
  auto again = open_or_die(fs);
  EXPECT_EQ(fs.home_fill(fs.block(0)), 2);
}

TEST(Journal, GroupCommitPutsSubmittedTransactionsInOneCommit) {
  TestFs fs = TestFs::make();
  auto j = open_or_die(fs);
  uint64_t a = j->submit(fs.txn({{fs.block(0), 1}})).value();
  uint64_t b = j->submit(fs.txn({{fs.block(1), 2}})).value();
  EXPECT_EQ(a, b);
  ASSERT_TRUE(j->commit());
  EXPECT_EQ(j->stats().commits, 1u);
  uint64_t c = j->submit(fs.txn({{fs.block(0), 3}})).value();
  EXPECT_GT(c, b);
}

TEST(Journal, LookupReturnsNewestImageUntilCheckpointWritesItHome) {
  TestFs fs = TestFs::make();
  auto j = open_or_die(fs);
  AlignedBuffer out(fs.bs());
  EXPECT_FALSE(j->lookup(fs.block(0), out.span()));
  ASSERT_TRUE(j->submit(fs.txn({{fs.block(0), 0x21}})).is_ok());
  ASSERT_TRUE(j->lookup(fs.block(0), out.span()));
  EXPECT_EQ(out.data()[100], std::byte{0x21});
  ASSERT_TRUE(j->commit());
  ASSERT_TRUE(j->submit(fs.txn({{fs.block(0), 0x22}})).is_ok());
  ASSERT_TRUE(j->lookup(fs.block(0), out.span()));
  EXPECT_EQ(out.data()[100], std::byte{0x22});
  EXPECT_EQ(fs.home_fill(fs.block(0)), -1);
  ASSERT_TRUE(j->checkpoint());
  EXPECT_FALSE(j->lookup(fs.block(0), out.span()));
  EXPECT_EQ(fs.home_fill(fs.block(0)), 0x22);
  // After a checkpoint the journal is clean: fsck finds nothing to replay.
  EXPECT_TRUE(check_journal(*fs.dev, fs.sb, 0).findings.empty());
}

TEST(Journal, RevokedImageIsNotReplayedOverTheReusedBlock) {
  TestFs fs = TestFs::make();
  const uint64_t b = fs.block(0);
  {
    auto j = open_or_die(fs);
    ASSERT_TRUE(j->submit(fs.txn({{b, 0x31}})).is_ok());
    ASSERT_TRUE(j->commit());
    ASSERT_TRUE(j->submit(fs.txn({}, {b})).is_ok());  // freed
    AlignedBuffer out(fs.bs());
    EXPECT_FALSE(j->lookup(b, out.span()));
    ASSERT_TRUE(j->commit());
    // Reused as file data, written in place.
    AlignedBuffer data(fs.bs());
    std::memset(data.data(), 0xDA, fs.bs());
    ASSERT_TRUE(fs.dev->write(b * fs.bs(), data.span()));
    ASSERT_TRUE(j->commit());
  }
  auto j = open_or_die(fs);
  EXPECT_EQ(j->replay_report().blocks_revoked, 1u);
  AlignedBuffer got(fs.bs());
  ASSERT_TRUE(fs.dev->read(b * fs.bs(), got.span()));
  EXPECT_EQ(got.data()[100], std::byte{0xDA});
}

TEST(Journal, BlockReusedAsMetadataAfterRevokeIsReplayed) {
  TestFs fs = TestFs::make();
  const uint64_t b = fs.block(0);
  {
    auto j = open_or_die(fs);
    ASSERT_TRUE(j->submit(fs.txn({{b, 0x41}})).is_ok());
    ASSERT_TRUE(j->commit());
    ASSERT_TRUE(j->submit(fs.txn({}, {b})).is_ok());
    ASSERT_TRUE(j->commit());
    ASSERT_TRUE(j->submit(fs.txn({{b, 0x42}})).is_ok());
    ASSERT_TRUE(j->commit());
  }
  auto j = open_or_die(fs);
  EXPECT_EQ(fs.home_fill(b), 0x42);
}

TEST(Journal, CheckpointOfACleanLogWritesNothing) {
  TestFs fs = TestFs::make();
  RecordingDevice rec(*fs.dev);
  auto opened = Journal::open(rec, fs.sb, 0, no_timer());
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  auto& j = *opened;
  const uint64_t b = fs.block(0);
  ASSERT_TRUE(j->submit(fs.txn({{b, 0x42}})).is_ok());
  ASSERT_TRUE(j->checkpoint());
  EXPECT_EQ(fs.home_fill(b), 0x42);
  const size_t ops = rec.log().size();
  // Unmount demotes every cached glock, and each demote checkpoints: a clean log must not
  // cost I/O each time (it cost a slot-header write and two flushes per glock).
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(j->checkpoint());
  EXPECT_EQ(rec.log().size(), ops);
  EXPECT_EQ(j->stats().checkpoints, 1u);
  // The next transaction still checkpoints.
  ASSERT_TRUE(j->submit(fs.txn({{b, 0x43}})).is_ok());
  ASSERT_TRUE(j->checkpoint());
  EXPECT_EQ(fs.home_fill(b), 0x43);
  EXPECT_EQ(j->stats().checkpoints, 2u);
  j.reset();
  auto reopened = open_or_die(fs);
  EXPECT_EQ(fs.home_fill(b), 0x43);
}

TEST(Journal, NeverWedgesWhenTheLogFillsRepeatedly) {
  TestFs fs = TestFs::make();
  auto j = open_or_die(fs);
  const uint32_t journal_blocks = fs.sb.geometry.journal_blocks;
  uint64_t logged = 0;
  for (int t = 0; logged < 5ull * journal_blocks; ++t) {
    TransactionRecord txn;
    for (uint64_t k = 0; k < 64; ++k) txn.blocks.push_back({fs.block(k), fs.image(fs.block(k), static_cast<uint8_t>(t))});
    ASSERT_TRUE(j->submit(std::move(txn)).is_ok());
    ASSERT_TRUE(j->commit());
    logged += 66;
  }
  EXPECT_GE(j->stats().checkpoints, 4u);
  const uint8_t last = static_cast<uint8_t>(logged / 66 - 1);
  j.reset();
  auto reopened = open_or_die(fs);
  for (uint64_t k = 0; k < 64; ++k) EXPECT_EQ(fs.home_fill(fs.block(k)), last);
}

TEST(Journal, RunningTransactionIsCommittedWhenItGrowsTooLarge) {
  TestFs fs = TestFs::make();
  JournalOptions o = no_timer();
  o.max_transaction_blocks = 40;
  auto j = open_or_die(fs, o);
  for (uint64_t k = 0; k < 100; ++k) ASSERT_TRUE(j->submit(fs.txn({{fs.block(k), 5}})).is_ok());
  EXPECT_GE(j->stats().commits, 2u);
}

TEST(Journal, RejectsTransactionsItCannotLog) {
  TestFs fs = TestFs::make();
  JournalOptions o = no_timer();
  o.max_transaction_blocks = 10;
  auto j = open_or_die(fs, o);
  TransactionRecord big;
  for (uint64_t k = 0; k < 20; ++k) big.blocks.push_back({fs.block(k), fs.image(fs.block(k), 1)});
  EXPECT_EQ(j->submit(std::move(big)).err(), EFBIG);
  const uint64_t inside_journal = fs.sb.geometry.journal(1) + 3;
  EXPECT_EQ(j->submit(fs.txn({{inside_journal, 1}})).err(), EINVAL);
  TransactionRecord short_image;
  short_image.blocks.push_back({fs.block(0), std::make_shared<AlignedBuffer>(512)});
  EXPECT_EQ(j->submit(std::move(short_image)).err(), EINVAL);
}

TEST(Journal, TimerCommitsWithoutAnExplicitCommit) {
  TestFs fs = TestFs::make();
  JournalOptions o;
  o.commit_interval = 20ms;
  auto j = open_or_die(fs, o);
  ASSERT_TRUE(j->submit(fs.txn({{fs.block(0), 0x51}})).is_ok());
  for (int i = 0; i < 200 && j->stats().commits == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(j->stats().commits, 1u);
  j.reset();
  auto reopened = open_or_die(fs);
  EXPECT_EQ(fs.home_fill(fs.block(0)), 0x51);
}

TEST(Journal, WriteErrorAbortsTheJournal) {
  TestFs fs = TestFs::make();
  FaultInjectingDevice faulty(*fs.dev);
  auto opened = Journal::open(faulty, fs.sb, 0, no_timer());
  ASSERT_TRUE(opened.is_ok());
  auto& j = *opened;
  ASSERT_TRUE(j->submit(fs.txn({{fs.block(0), 1}})).is_ok());
  faulty.fail_nth(IoKind::kFlush, 1);
  Status st = j->commit();
  EXPECT_FALSE(st);
  EXPECT_NE(st.message().find("aborted"), std::string::npos);
  faulty.clear_faults();
  EXPECT_FALSE(j->submit(fs.txn({{fs.block(1), 1}})).is_ok());
  EXPECT_FALSE(j->commit());
}

TEST(Journal, FsckReportsADirtyJournalAndIsCleanAfterReplay) {
  TestFs fs = TestFs::make();
  {
    auto j = open_or_die(fs, no_timer(), 1);
    ASSERT_TRUE(j->submit(fs.txn({{fs.block(0), 1}})).is_ok());
    ASSERT_TRUE(j->commit());
  }
  auto report = check_filesystem(*fs.dev);
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  EXPECT_TRUE(report->mentions("slot 1: journal needs replay"));
  auto replayed = replay(*fs.dev, fs.sb, 1);
  ASSERT_TRUE(replayed.is_ok());
  EXPECT_TRUE(replayed->marked_clean);
  auto after = check_filesystem(*fs.dev);
  ASSERT_TRUE(after.is_ok());
  EXPECT_FALSE(after->mentions("journal"));
}

}  // namespace
}  // namespace lunfs::journal

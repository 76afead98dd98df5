// The fuzz harness on fixed inputs, so every build exercises it: untouched journal, garbage,
// a wrong checksum, a re-sealed sequence gap, an entry count beyond a block, a tail moved
// into the middle of a transaction.
#include <gtest/gtest.h>

#include <vector>

#include "tests/journal/fuzz_journal_input.h"

namespace lunfs::journal::fuzz {
namespace {

Outcome run(std::vector<uint8_t> input) { return replay_patched_journal(input.data(), input.size()); }

TEST(FuzzJournalRegression, UntouchedJournalReplaysThreeTransactions) {
  Outcome o = run({0, 0});
  EXPECT_EQ(o.violation, "");
  EXPECT_EQ(o.report.transactions, 3u);
  EXPECT_EQ(o.report.blocks_revoked, 1u);
}

TEST(FuzzJournalRegression, GarbageEverywhereIsReportedNotReplayed) {
  std::vector<uint8_t> in{0, 0};
  for (uint8_t b = 0; b < 32; ++b) {
    for (uint8_t k = 0; k < 8; ++k) in.insert(in.end(), {b, static_cast<uint8_t>(k * 37), k, 0x5A, 0});
  }
  Outcome o = run(in);
  EXPECT_EQ(o.violation, "");
  EXPECT_EQ(o.report.transactions, 0u);
}

TEST(FuzzJournalRegression, WrongChecksumInSecondTransactionStopsAfterTheFirst) {
  Outcome o = run({0, 0, /*block*/ 5, /*offset*/ 100, 0, 0xFF, /*no reseal*/ 0});
  EXPECT_EQ(o.violation, "");
  EXPECT_EQ(o.report.transactions, 1u);
  EXPECT_EQ(o.report.end, LogEnd::kTorn);
}

TEST(FuzzJournalRegression, ResealedSequenceGapIsDamage) {
  // Sequence field (offset 16) of transaction 2's descriptor 2 -> 2^6 (xor 0x42), re-sealed.
  Outcome o = run({0, 0, 4, 16, 0, 0x42, 1});
  EXPECT_EQ(o.violation, "");
  EXPECT_EQ(o.report.end, LogEnd::kDamaged);
  EXPECT_NE(o.report.end_reason.find("sequence gap"), std::string::npos) << o.report.end_reason;
}

TEST(FuzzJournalRegression, ResealedHugeEntryCountIsRejected) {
  Outcome o = run({0, 0, 0, 37, 0, 0xFF, 1});  // count field of transaction 1's descriptor
  EXPECT_EQ(o.violation, "");
  EXPECT_EQ(o.report.transactions, 0u);
  EXPECT_NE(o.report.end_reason.find("more than a block holds"), std::string::npos) << o.report.end_reason;
}

TEST(FuzzJournalRegression, TailInsideATransactionFindsNoTransactions) {
  Outcome o = run({0x80, 2});
  EXPECT_EQ(o.violation, "");
  EXPECT_EQ(o.report.transactions, 0u);
}

TEST(FuzzJournalRegression, DamagedCommitAtAMovedTailIsTheEndOfTheLog) {
  // Found by the fuzzer: the tail moved onto transaction 3's commit, which is also damaged.
  Outcome o = run({0x83, 0x0a, 0x0a, 0x24, 0x1f, 0xe0, 0xfe, 0x5f});
  EXPECT_EQ(o.violation, "");
  EXPECT_EQ(o.report.transactions, 0u);
}

}  // namespace
}  // namespace lunfs::journal::fuzz

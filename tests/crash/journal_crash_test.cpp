// Crash consistency of the journal: for every workload, at least a couple of thousand crash
// points (flush boundaries, prefixes, torn and reordered writes, crashes during replay), no
// acknowledged transaction lost, none half-applied, journal clean after replay.
#include <gtest/gtest.h>

#include "tests/crash/journal_workloads.h"

namespace lunfs::crash {
namespace {

void expect_survives(const Scenario& s, size_t min_points) {
  auto stats = run_crash_test(s, CrashOptions::from_environment());
  ASSERT_TRUE(stats.is_ok()) << stats.status().to_string();
  for (const std::string& f : stats->failure_texts) ADD_FAILURE() << f;
  EXPECT_EQ(stats->failures, 0u);
  EXPECT_GE(stats->points, min_points);
  std::printf("%s: %zu crash points in %zu flush epochs, %zu with a crash during replay\n",
              s.name.c_str(), stats->points, stats->epochs, stats->recovery_crashes);
}

TEST(JournalCrash, SmallTransactionsWithGroupCommit) { expect_survives(small_transactions_scenario(), 2000); }
TEST(JournalCrash, OverwritesOfTheSameBlocks) { expect_survives(overwrite_scenario(), 4000); }
TEST(JournalCrash, RevokedBlocksReusedAsMetadataAndData) { expect_survives(revoke_reuse_scenario(), 2000); }
TEST(JournalCrash, WrapAroundWithCheckpoints) { expect_survives(wraparound_scenario(), 2000); }
TEST(JournalCrash, FullJournal) { expect_survives(full_journal_scenario(), 300); }

}  // namespace
}  // namespace lunfs::crash

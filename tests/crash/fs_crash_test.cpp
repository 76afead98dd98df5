// File-system-level crash tests: every workload of fs_workloads.h through the crash checker
// (flush boundaries, prefixes, torn and reordered writes, crashes during replay); at every
// point the slot is replayed, fsck must find no error and the verifier must find
// everything acknowledged. FsCrash runs the CI sample (label `slow`: excluded from the
// sanitizer build); FsCrashQuick runs every workload smaller and with fewer points per
// epoch, so the sanitizer build still covers each one. Each test prints its point count
// and asserts a minimum, so coverage cannot shrink unnoticed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "tests/crash/fs_workloads.h"

namespace lunfs::crash {
namespace {

void expect_survives(const Scenario& s, const CrashOptions& options, size_t min_points) {
  auto stats = run_crash_test(s, options);
  ASSERT_TRUE(stats) << stats.status().to_string();
  for (const auto& f : stats->failure_texts) ADD_FAILURE() << f;
  EXPECT_EQ(stats->failures, 0u);
  EXPECT_GE(stats->points, min_points);
  std::printf("%s: %zu crash points in %zu flush epochs, %zu with a crash during replay\n", s.name.c_str(),
              stats->points, stats->epochs, stats->recovery_crashes);
}

void full(const Scenario& s, size_t min_points) { expect_survives(s, CrashOptions::from_environment(), min_points); }

// A third of the samples per epoch (LUNFS_CRASH_SOAK still multiplies them).
void quick(const Scenario& s, size_t min_points) {
  CrashOptions o = CrashOptions::from_environment();
  o.prefixes = std::max(1u, o.prefixes / 3);
  o.torn = std::max(1u, o.torn / 3);
  o.subsets = std::max(1u, o.subsets / 3);
  expect_survives(s, o, min_points);
}

TEST(FsCrash, SmallFilesRenameOverAndUnlink) { full(small_files_scenario(14), 700); }
TEST(FsCrash, VmImageOverwritesAndAppends) { full(vm_image_scenario(14), 280); }
TEST(FsCrash, DirectoryGrowth) { full(directory_growth_scenario(60), 1000); }
TEST(FsCrash, FallocatePunchZeroRange) { full(fallocate_scenario(200), 1000); }
TEST(FsCrash, Xattrs) { full(xattr_scenario(150), 1000); }
TEST(FsCrash, StaleDataNeverExposed) { full(stale_data_scenario(200), 1000); }

TEST(FsCrashQuick, SmallFilesRenameOverAndUnlink) { quick(small_files_scenario(6), 50); }
TEST(FsCrashQuick, VmImageOverwritesAndAppends) { quick(vm_image_scenario(6), 50); }
TEST(FsCrashQuick, DirectoryGrowth) { quick(directory_growth_scenario(12), 50); }
TEST(FsCrashQuick, FallocatePunchZeroRange) { quick(fallocate_scenario(30), 50); }
TEST(FsCrashQuick, Xattrs) { quick(xattr_scenario(30), 50); }
TEST(FsCrashQuick, StaleDataNeverExposed) { quick(stale_data_scenario(30), 50); }

}  // namespace
}  // namespace lunfs::crash

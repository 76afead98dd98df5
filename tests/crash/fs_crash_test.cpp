// File-system-level crash tests: every workload of fs_workloads.h through the crash checker
// (flush boundaries, prefixes, torn and reordered writes, crashes during replay); at every
// point the slot is replayed, fsck must find no error and the verifier must find
// everything acknowledged. FsCrash runs the CI sample (label `slow`: excluded from the
// sanitizer build); FsCrashQuick runs every workload smaller and with fewer points per
// epoch, so the sanitizer build still covers each one. Each test prints its point count
// and asserts a minimum, so coverage cannot shrink unnoticed; the FsCrash minima add up to
// more than 10,000 points (the counts are deterministic: fixed seeds, no commit timer).
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

// `thinning` divides the samples per epoch, for workloads whose points are expensive
// (LUNFS_CRASH_SOAK still multiplies them).
CrashOptions sampled(uint32_t thinning) {
  CrashOptions o = CrashOptions::from_environment();
  o.prefixes = std::max(1u, o.prefixes / thinning);
  o.torn = std::max(1u, o.torn / thinning);
  o.subsets = std::max(1u, o.subsets / thinning);
  return o;
}

void full(const Scenario& s, size_t min_points, uint32_t thinning = 1) {
  expect_survives(s, sampled(thinning), min_points);
}
void quick(const Scenario& s, size_t min_points, uint32_t thinning = 3) {
  expect_survives(s, sampled(thinning), min_points);
}

TEST(FsCrash, SmallFilesRenameOverAndUnlink) { full(small_files_scenario(14), 720); }
TEST(FsCrash, VmImageOverwritesAndAppends) { full(vm_image_scenario(14), 280); }
TEST(FsCrash, DirectoryGrowth) { full(directory_growth_scenario(30), 620); }
TEST(FsCrash, FallocatePunchZeroRange) { full(fallocate_scenario(230), 3100); }
TEST(FsCrash, Xattrs) { full(xattr_scenario(200), 2900); }
TEST(FsCrash, StaleDataNeverExposed) { full(stale_data_scenario(280), 2450); }
TEST(FsCrash, ConcurrentAllocatingWrites) { full(concurrent_writes_scenario(160), 1900); }
TEST(FsCrash, AsyncAllocatingWrites) { full(async_writes_scenario(160), 1800); }
TEST(FsCrash, LongSymlinks) { full(long_symlinks_scenario(16), 370); }

TEST(FsCrashQuick, SmallFilesRenameOverAndUnlink) { quick(small_files_scenario(6), 120); }
TEST(FsCrashQuick, VmImageOverwritesAndAppends) { quick(vm_image_scenario(6), 60); }
TEST(FsCrashQuick, DirectoryGrowth) { quick(directory_growth_scenario(12), 140, 2); }
TEST(FsCrashQuick, FallocatePunchZeroRange) { quick(fallocate_scenario(30), 160); }
TEST(FsCrashQuick, Xattrs) { quick(xattr_scenario(30), 200); }
TEST(FsCrashQuick, StaleDataNeverExposed) { quick(stale_data_scenario(36), 110); }
TEST(FsCrashQuick, ConcurrentAllocatingWrites) { quick(concurrent_writes_scenario(60), 260); }
TEST(FsCrashQuick, AsyncAllocatingWrites) { quick(async_writes_scenario(60), 280); }
TEST(FsCrashQuick, LongSymlinks) { quick(long_symlinks_scenario(6), 70); }

}  // namespace
}  // namespace lunfs::crash

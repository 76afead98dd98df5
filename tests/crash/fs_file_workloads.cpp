// The fallocate, stale-data and concurrent-writes workloads: mixes of the random
// file-operation engine.
#include "tests/crash/file_ops_workload.h"
#include "tests/crash/fs_workloads.h"

namespace lunfs::crash {

Scenario fallocate_scenario(uint64_t ops) {
  FileOpsMix mix;
  mix.write = 30;
  mix.fallocate = 25;
  mix.punch = 20;
  mix.zero_range = 20;
  mix.truncate = 8;
  mix.churn = 2;
  mix.live_files = 3;
  mix.max_size = 384 * 1024;
  mix.sync_percent = 60;
  // A fresh LUN reads as zeros; the engine still refuses any chunk that is not the file's own.
  return file_ops_scenario("fallocate, punch hole, zero range", generate_file_ops(mix, ops, 3), "");
}

Scenario stale_data_scenario(uint64_t ops) {
  FileOpsMix mix;
  mix.write = 45;  // mostly allocating: appends, holes filled, unwritten extents converted
  mix.fallocate = 15;
  mix.punch = 8;
  mix.zero_range = 4;
  mix.truncate = 10;
  mix.churn = 18;  // deleted files' blocks are reused by the others
  mix.live_files = 4;
  mix.max_size = 256 * 1024;
  mix.sync_percent = 40;
  return file_ops_scenario("stale data exposure", generate_file_ops(mix, ops, 5), "STALE-DISK-DATA!");
}

namespace {

// Thin-image filling: holes, appends, unwritten extents converted, freed blocks that hold
// other files' data when they are reused, and most block-aligned writes begun early.
FileOpsMix concurrent_writes_mix() {
  FileOpsMix mix;
  mix.write = 60;
  mix.fallocate = 12;
  mix.punch = 6;
  mix.zero_range = 4;
  mix.truncate = 6;
  mix.churn = 12;
  mix.live_files = 3;
  mix.max_size = 256 * 1024;
  mix.sync_percent = 50;
  mix.early_percent = 70;
  return mix;
}

}  // namespace

Scenario concurrent_writes_scenario(uint64_t ops) {
  return file_ops_scenario("concurrent allocating writes", generate_file_ops(concurrent_writes_mix(), ops, 9),
                           "STALE-DISK-DATA!");
}

Scenario async_writes_scenario(uint64_t ops) {
  FileOpsMix mix = concurrent_writes_mix();
  mix.async_writes = true;
  return file_ops_scenario("allocating writes through the asynchronous path", generate_file_ops(mix, ops, 13),
                           "STALE-DISK-DATA!");
}

}  // namespace lunfs::crash

// File-system-level crash workloads: each is a Scenario for the crash checker that mounts
// the core over slot 0's journal on the recording device, and whose verifier replays the
// slot, runs fsck and mounts the image read-only to check everything acknowledged.
// `ops` sizes a workload: the CI tests run a full and a reduced size (for sanitizer builds).
#pragma once

#include <cstdint>

#include "tests/crash/crash_checker.h"

namespace lunfs::crash {

// Small files with fsync, the rename-over-an-old-file pattern, unlink + directory fsync.
Scenario small_files_scenario(uint64_t ops);
// A preallocated VM image: overwrites with fdatasync, appends with fsync.
Scenario vm_image_scenario(uint64_t ops);
// One directory grown from empty past leaf splits and a hash-table doubling (long names),
// with removals and directory fsyncs.
Scenario directory_growth_scenario(uint64_t ops);
// fallocate (default, KEEP_SIZE), PUNCH_HOLE, ZERO_RANGE, truncate and writes into
// unwritten extents with fsync/fdatasync; sizes, contents and SEEK_DATA/SEEK_HOLE.
Scenario fallocate_scenario(uint64_t ops);
// user.* xattrs of small and large values and POSIX ACLs, set/replaced/removed with fsync.
Scenario xattr_scenario(uint64_t ops);
// Free space holds a marker before mkfs; allocating writes, unwritten conversion and
// blocks freed by deleted files and reused: no file may ever show a byte it did not own.
Scenario stale_data_scenario(uint64_t ops);
// Allocating writes in flight two at a time: a block-aligned write's data reaches the disk
// only after the op ahead of it (often another write to the same file) and its sync,
// between the write's two transactions; nothing stale or foreign may show, and sizes never
// run ahead of data.
Scenario concurrent_writes_scenario(uint64_t ops);
// The same mix with every write through write_async, mount.lunfs's data path: allocating
// whole-block writes run their second transaction in the I/O completion.
Scenario async_writes_scenario(uint64_t ops);
// Symbolic links with targets too long for the inode (in a data block each), created and
// unlinked with directory fsyncs over free space that holds a marker: every link present is
// whole, and the set is the one after some op at or past the acknowledged one.
Scenario long_symlinks_scenario(uint64_t ops);

}  // namespace lunfs::crash

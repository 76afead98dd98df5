// Random regular-file operations (create, write, fallocate in every mode, truncate, unlink)
// with a model of the files after every operation: the engine behind the fallocate and the
// stale-data workloads.
//
// Every byte a workload writes describes itself: 16-byte chunks "ff:vvvv:oooooooo" name the
// file, the operation that wrote it and the chunk's offset. So a verifier can tell, for
// every chunk of a file after a crash, whether it is zeros, this file's own data at this
// offset, or something that must never appear there: stale disk contents, or data of
// another (possibly deleted) file — i.e. data exposed because metadata reached the disk
// before the data it points to.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tests/crash/crash_checker.h"

namespace lunfs::crash {

inline constexpr uint64_t kChunk = 16;

struct FileOp {
  enum class Kind { kCreate, kWrite, kFallocate, kPunchHole, kZeroRange, kTruncate, kUnlink };
  enum class Sync { kNone, kFsync, kFdatasync, kDirectoryFsync };
  Kind kind = Kind::kCreate;
  uint32_t file = 0;  // file ids are never reused: "file<id>"
  uint64_t offset = 0, length = 0;  // multiples of kChunk; truncate: the new size in offset
  bool keep_size = false;          // fallocate, zero range
  Sync sync = Sync::kNone;         // after the operation; a sync acknowledges every op so far
  // A block-aligned write that starts before the op ahead of it and whose data reaches the
  // device only after that op (and its sync) is done: two writers in flight at once.
  bool begun_early = false;
  // A write through write_async, mount.lunfs's data path (direct_io.cpp), instead of write().
  bool through_async = false;
  std::string describe() const;
};

// How often each kind is drawn, and the shape of the files.
struct FileOpsMix {
  uint32_t write = 0, fallocate = 0, punch = 0, zero_range = 0, truncate = 0, churn = 0;  // churn: unlink + create
  uint32_t live_files = 3;
  uint64_t max_size = 256 * 1024;
  uint32_t sync_percent = 50;  // chance that an op is followed by a sync
  uint32_t early_percent = 0;  // chance that a write that may begin early does (FileOp::begun_early)
  bool async_writes = false;   // every write through write_async (FileOp::through_async)
};

std::vector<FileOp> generate_file_ops(const FileOpsMix& mix, uint64_t ops, uint64_t seed);

// The scenario: runs `ops` under the core; at every crash point each file must exist as in
// some state between the acknowledged op and the next sync, with one of their sizes, each
// chunk zeros or its content in one of those states, SEEK_DATA/SEEK_HOLE reporting data
// wherever a chunk is not zero and a hole wherever every such state has one, and no chunk
// that is not the file's own (with `disk_fill`, free space holds a marker).
Scenario file_ops_scenario(std::string name, std::vector<FileOp> ops, std::string disk_fill);

}  // namespace lunfs::crash

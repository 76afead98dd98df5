// What every file-system-level crash workload shares: mounting the core over the journal on
// the recording device (the workload), replaying slot 0 (recovery), and mounting the
// recovered image read-only after fsck found no error (verification).
#pragma once

#include <cstdint>
#include <string>

#include "fs/core/filesystem.h"
#include "fs/core/glock.h"
#include "fs/metadata_log.h"
#include "journal/journal.h"
#include "tests/crash/crash_checker.h"

namespace lunfs::crash {

MountOptions quiet_mount(bool read_only);

Status write_all(FileSystem& fs, uint64_t ino, uint64_t offset, const std::string& data);
// The same through FileSystem::write_async, waiting for its completion.
Status write_all_async(FileSystem& fs, uint64_t ino, uint64_t offset, const std::string& data);
// Creates `name` with `data` and fsyncs it (the kernel's lookup reference is dropped).
Status create_synced(FileSystem& fs, uint64_t dir, const std::string& name, const std::string& data);
// The whole content of `name` in `dir` (its lookup errors as they are).
Result<std::string> read_name(FileSystem& fs, uint64_t dir, const std::string& name);
Result<std::string> read_file(FileSystem& fs, uint64_t ino, uint64_t size);

// Recovery is the mount's: replay the slot. A damaged log is a failure.
Status replay_slot(BlockDevice& image, const ondisk::Superblock& sb);
// fsck (check_filesystem) reports no finding of kind error.
Status fsck_clean(BlockDevice& image);

// Runs `body` on the file system mounted read-write over slot 0's journal, then unmounts.
template <typename Body>
Status with_mount(BlockDevice& dev, const ondisk::Superblock& sb, Body body) {
  LUNFS_ASSIGN(auto j, journal::Journal::open(dev, sb, 0, {.commit_interval = std::chrono::milliseconds(0)}));
  NoLockManager lm;
  LUNFS_ASSIGN(auto fs, FileSystem::mount(dev, *j, lm, quiet_mount(false)));
  LUNFS_TRY(body(*fs));
  return fs->unmount();
}

// Runs `body` (which returns the state it found) on the recovered image mounted read-only.
template <typename Body>
Result<uint64_t> with_read_only_mount(BlockDevice& image, Body body) {
  WriteThroughLog log(image);  // never written: the mount is read-only
  NoLockManager lm;
  LUNFS_ASSIGN(auto fs, FileSystem::mount(image, log, lm, quiet_mount(true)));
  LUNFS_ASSIGN(uint64_t state, body(*fs));
  LUNFS_TRY(fs->unmount());
  return state;
}

// A 64-bit digest (xxHash64) of a state description, so a verifier can say which state it saw.
uint64_t digest(const std::string& text, uint64_t seed = 0);

}  // namespace lunfs::crash

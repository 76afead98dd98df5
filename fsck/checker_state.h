// Internal to fsck/: the Checker whose passes check a file system, and the state they hand
// on to later passes. One file per pass, in the order run() calls them (as e2fsck's and
// gfs2-utils' pass1.c..pass5.c): pass1_superblocks.cpp, pass2_slots.cpp, pass3_rgrps.cpp,
// pass4_inodes.cpp with pass4_directories.cpp, pass5_links.cpp, pass6_ownership.cpp,
// pass7_statfs.cpp; checker.cpp runs them. repair.cpp's Repairer plans the repairs from
// the state they leave (the flags in InodeInfo and the *_bad_ members say what to redo).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "fs/device/aligned_buffer.h"
#include "fs/format/dir_format.h"
#include "fs/format/extent_format.h"
#include "fs/format/inode_format.h"
#include "fs/format/rgrp_format.h"
#include "fsck/checker.h"

namespace lunfs::fsck {

inline std::string n(uint64_t v) { return std::to_string(v); }

struct RgrpInfo {
  bool header_ok = false;
  bool bitmaps_ok = false;  // bitmaps read and valid (or uninitialised)
  ondisk::RgrpHeader header;
  std::vector<uint8_t> bits;  // concatenated bitmap bits, 2 per data block
  ondisk::BlockState state(uint32_t i) const { return static_cast<ondisk::BlockState>((bits[i / 4] >> (i % 4 * 2)) & 3); }
};

struct InodeInfo {
  uint32_t mode = 0;
  uint32_t nlink = 0;
  uint64_t parent = 0;
  bool unlinked_state = false;
  uint32_t entry_refs = 0;  // directory entries naming this inode
  uint32_t subdirs = 0;     // for directories: entries that are directories
  uint64_t named_from = 0;  // a directory that names it
  // What the repair must redo (repair.cpp): set where the check reports the damage.
  bool tree_bad = false;    // the extent tree has entries to clear
  bool dir_bad = false;     // the directory's structure is damaged: rewritten from its entries
  bool xattr_bad = false;   // the xattr block is unreadable or damaged: dropped
  bool layout_bad = false;  // flags and content disagree with the file type
  bool unusable = false;    // nothing to keep (a symlink without a valid target): removed
  bool discovered = false;  // found through a directory entry, its bitmap being unreadable
  bool scanned = false;     // found by a scan of such a group, named by nothing the check read
};

struct EntryRef {
  uint64_t dir;
  uint64_t target;
  uint8_t type;
  std::string name;
  // Salvaged from a block whose checksum failed: the name matches its hash, but nothing
  // vouches for the inode number, so the repair keeps it only where nothing contradicts it.
  bool unverified = false;
};

struct BlockRef {
  uint64_t start;
  uint64_t length;
  uint64_t owner;  // inode
  const char* what;
};

class Checker {
  friend class Repairer;

 public:
  Checker(BlockDevice& dev, const FsckOptions& options) : dev_(dev), options_(options) {}

  Result<FsckReport> run();
  // The slot's journal cannot carry a repair: its header or its log is damaged.
  bool slot_unusable(uint32_t s) const {
    return (s < slot_header_bad_.size() && slot_header_bad_[s]) || (s < journal_bad_.size() && journal_bad_[s]);
  }

 private:
  void error(std::string text) {  // a finding; lunfs::error makes a Status
    report_.findings.push_back({FsckFinding::Kind::kError, std::move(text)}); }
  void warning(std::string text) { report_.findings.push_back({FsckFinding::Kind::kWarning, std::move(text)}); }
  void progress(const std::string& text) {
    if (options_.verbose) *options_.verbose << text << "\n";
  }
  // The progress bar's phase, then its steps within it (resource groups done).
  void phase(std::string name, uint64_t total) {
    phase_ = std::move(name);
    phase_total_ = total;
    step(0);
  }
  void step(uint64_t done) {
    if (options_.on_progress) options_.on_progress(phase_, done, phase_total_);
  }
  uint32_t bs() const { return report_.sb.geometry.block_size; }

  Status read_blocks(uint64_t block, uint64_t count, AlignedBuffer& buf) {
    if (buf.size() != count * bs()) buf = AlignedBuffer(count * bs());
    return dev_.read(block * bs(), buf.span());
  }

  // Reads one block for a structure; a read error becomes a finding and returns false.
  bool read_one(uint64_t block, AlignedBuffer& buf, const std::string& what) {
    if (auto st = read_blocks(block, 1, buf); !st) {
      error(what + ": cannot read block " + n(block) + ": " + st.to_string());
      return false;
    }
    return true;
  }

  // pass1_superblocks.cpp
  Status load_superblock();
  void compare_backup();
  // pass2_slots.cpp
  void check_slots();
  // pass3_rgrps.cpp
  void check_rgrps();
  // pass4_inodes.cpp
  bool walk_extents(uint64_t ino, const ondisk::ExtentNode& node, uint64_t lo, uint64_t hi,
                    std::vector<ondisk::Extent>& out, uint64_t& blocks, int expected_depth);
  static uint64_t map_block(const std::vector<ondisk::Extent>& extents, uint64_t lb);
  void check_inode(uint64_t ino, std::span<const std::byte> block, bool unlinked_state);
  void check_symlink(uint64_t ino, const ondisk::Inode& inode, const std::vector<ondisk::Extent>& extents);
  void check_inodes();
  void discover_inodes();
  // pass4_directories.cpp
  void add_entries(uint64_t dir, const std::vector<ondisk::DirEntry>& entries, bool unverified = false);
  void salvage_entries(uint64_t dir, std::span<const uint8_t> raw, bool unverified);
  uint64_t check_hashed_dir(uint64_t ino, const ondisk::Inode& inode, const std::vector<ondisk::Extent>& extents,
                            uint64_t& blocks);
  // pass5_links.cpp
  void check_links();
  // pass6_ownership.cpp
  void check_ownership();
  // pass7_statfs.cpp
  void check_statfs();

  BlockDevice& dev_;
  const FsckOptions& options_;
  FsckReport report_;
  std::vector<RgrpInfo> rgrps_;
  std::unordered_map<uint64_t, InodeInfo> inodes_;
  std::unordered_map<uint64_t, bool> bad_inodes_;
  std::vector<EntryRef> entries_;
  std::vector<BlockRef> refs_;
  int64_t statfs_free_ = 0;
  int64_t statfs_dinodes_ = 0;
  bool statfs_valid_ = true;
  bool have_primary_ = false;
  bool backup_bad_ = false;  // the backup superblock is damaged or differs from the primary
  std::vector<bool> slot_header_bad_, journal_bad_, heartbeat_bad_, statfs_block_bad_;
  bool statfs_mismatch_ = false;
  uint64_t total_free_ = 0;
  std::string phase_;
  uint64_t phase_total_ = 1;
};

}  // namespace lunfs::fsck

// Inodes: one per block, the inode number is the block address (architecture decision 1,
// docs/decisions.md).
// Fixed fields in the first 256 bytes; the rest of the block (the content area) holds
// either the root of the extent tree, inline file data, or inline directory entries.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "fs/format/ondisk.h"
#include "fs/format/superblock.h"

namespace lunfs::ondisk {

inline constexpr size_t kInodeContentOffset = 256;

// Inode flags.
inline constexpr uint32_t kInodeInlineData = 1u << 0;  // content area holds the file bytes
inline constexpr uint32_t kInodeExtents = 1u << 1;     // content area holds an extent-tree root
inline constexpr uint32_t kInodeInlineDir = 1u << 2;   // content area holds directory entries
inline constexpr uint32_t kInodeHashedDir = 1u << 3;   // with kInodeExtents: hash-table directory
inline constexpr uint32_t kInodeImmutable = 1u << 4;
inline constexpr uint32_t kInodeAppend = 1u << 5;
inline constexpr uint32_t kInodeNoatime = 1u << 6;
inline constexpr uint32_t kInodeKnownFlags = (1u << 7) - 1;

struct Timespec {
  int64_t sec = 0;
  uint32_t nsec = 0;
  bool operator==(const Timespec&) const = default;
};

struct Inode {
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;
  uint64_t size = 0;
  uint64_t blocks = 0;  // blocks allocated to the file (data and tree/xattr/dir metadata)
  Timespec atime, mtime, ctime, crtime;
  uint64_t generation = 0;
  uint32_t flags = 0;
  uint64_t rdev = 0;
  uint64_t xattr_block = 0;  // 0 = none
  uint64_t parent = 0;       // directories: the parent directory's inode
  uint32_t dir_depth = 0;    // hashed directories: log2 of the hash-table size
  uint64_t dir_entries = 0;  // directories: entries, "." and ".." excluded
  std::vector<uint8_t> content;  // the content area; its used length is content.size()
  bool operator==(const Inode&) const = default;
};

inline size_t inode_content_capacity(uint32_t block_size) { return block_size - kInodeContentOffset; }

// Symbolic link targets are 1..4095 bytes (PATH_MAX - 1, as Linux file systems at every
// block size). Up to symlink_inline_max they are inline data; longer ones are a regular
// file's extent tree over data blocks of their own (docs/format.md, "Symbolic links").
inline constexpr size_t kSymlinkMaxBytes = 4095;
inline size_t symlink_inline_max(uint32_t block_size) {
  return std::min(kSymlinkMaxBytes, inode_content_capacity(block_size));
}

void encode_inode(const Inode& ino, std::span<std::byte> b, uint64_t blocknr, uint64_t sequence,
                  uint64_t seed);
// Checks field consistency (mode type, flag combinations, inline sizes, pointers inside the
// data area); the extent root and inline directory are checked by their own decoders.
Result<Inode> decode_inode(std::span<const std::byte> b, uint64_t blocknr, uint64_t seed,
                           const Geometry& g);

}  // namespace lunfs::ondisk

// Extent trees map a file's logical blocks to runs of physical blocks (architecture
// decision 2, docs/decisions.md). The root lives in the inode's content area; deeper
// nodes are blocks of their own. Leaves hold extents (with an "unwritten" flag for
// preallocated space that reads as zeros); index nodes hold (first logical block, child
// block) pairs.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "fs/format/ondisk.h"
#include "fs/format/superblock.h"

namespace lunfs::ondisk {

inline constexpr uint32_t kExtentUnwritten = 1;
inline constexpr uint16_t kMaxExtentDepth = 5;
inline constexpr size_t kExtentNodeBodyHeader = 8;  // depth, count, max, reserved
inline constexpr size_t kExtentLeafEntrySize = 24;
inline constexpr size_t kExtentIndexEntrySize = 16;
inline constexpr size_t kExtentBlockBodyOffset = 40;  // header + owner inode

struct Extent {
  uint64_t logical = 0;
  uint64_t physical = 0;
  uint32_t length = 0;
  uint32_t flags = 0;
  uint64_t logical_end() const { return logical + length; }
  bool operator==(const Extent&) const = default;
};

struct ExtentIndex {
  uint64_t logical = 0;  // first logical block the child covers
  uint64_t child = 0;
  bool operator==(const ExtentIndex&) const = default;
};

struct ExtentNode {
  uint16_t depth = 0;  // 0 = leaf
  std::vector<Extent> extents;       // depth 0
  std::vector<ExtentIndex> children;  // depth > 0
  bool operator==(const ExtentNode&) const = default;
};

// Entries a node body of `area_bytes` holds.
uint16_t extent_capacity(size_t area_bytes, uint16_t depth);
inline size_t extent_root_area(uint32_t block_size) { return block_size - 256; }
inline size_t extent_block_area(uint32_t block_size) { return block_size - kExtentBlockBodyOffset; }

// The root, as the bytes of the inode's content area.
std::vector<uint8_t> encode_extent_root(const ExtentNode& node, uint32_t block_size);
Result<ExtentNode> decode_extent_root(std::span<const uint8_t> content, uint64_t inode_blocknr,
                                      const Geometry& g);

void encode_extent_node(const ExtentNode& node, uint64_t owner, std::span<std::byte> b,
                        uint64_t blocknr, uint64_t sequence, uint64_t seed);
Result<ExtentNode> decode_extent_node(std::span<const std::byte> b, uint64_t blocknr,
                                      uint64_t seed, uint64_t owner, const Geometry& g);

}  // namespace lunfs::ondisk

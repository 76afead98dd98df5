// Extent root and extent node codecs. Offsets: docs/format.md, "Extent trees".
#include "fs/format/extent_format.h"

#include <algorithm>

namespace lunfs::ondisk {

namespace {

// Largest logical block whose byte offset still fits a signed 64-bit file offset.
uint64_t max_logical(uint32_t block_size) { return (uint64_t{1} << 63) / block_size; }

void encode_body(const ExtentNode& node, std::span<std::byte> area) {
  uint16_t count = static_cast<uint16_t>(node.depth == 0 ? node.extents.size() : node.children.size());
  put<uint16_t>(area, 0, node.depth);
  put<uint16_t>(area, 2, count);
  put<uint16_t>(area, 4, extent_capacity(area.size(), node.depth));
  put<uint16_t>(area, 6, 0);
  size_t off = kExtentNodeBodyHeader;
  if (node.depth == 0) {
    for (const Extent& e : node.extents) {
      put<uint64_t>(area, off, e.logical);
      put<uint64_t>(area, off + 8, e.physical);
      put<uint32_t>(area, off + 16, e.length);
      put<uint32_t>(area, off + 20, e.flags);
      off += kExtentLeafEntrySize;
    }
  } else {
    for (const ExtentIndex& c : node.children) {
      put<uint64_t>(area, off, c.logical);
      put<uint64_t>(area, off + 8, c.child);
      off += kExtentIndexEntrySize;
    }
  }
}

Result<ExtentNode> decode_body(std::span<const std::byte> area, BlockType type, uint64_t blocknr,
                               const Geometry& g) {
  auto bad = [&](const std::string& what) { return corrupt(type, blocknr, "extent tree: " + what); };
  if (area.size() < kExtentNodeBodyHeader) return bad("node area too small");
  ExtentNode node;
  node.depth = get<uint16_t>(area, 0);
  uint16_t count = get<uint16_t>(area, 2);
  uint16_t max = get<uint16_t>(area, 4);
  if (node.depth > kMaxExtentDepth) return bad("depth " + std::to_string(node.depth) + " above 5");
  if (max != extent_capacity(area.size(), node.depth)) return bad("wrong node capacity");
  if (count > max) return bad("more entries than the node holds");
  const uint64_t limit = max_logical(g.block_size);
  size_t off = kExtentNodeBodyHeader;
  for (uint16_t i = 0; i < count; ++i) {
    if (node.depth == 0) {
      Extent e{get<uint64_t>(area, off), get<uint64_t>(area, off + 8), get<uint32_t>(area, off + 16),
               get<uint32_t>(area, off + 20)};
      off += kExtentLeafEntrySize;
      if (e.length == 0) return bad("empty extent");
      if (e.flags & ~kExtentUnwritten) return bad("unknown extent flags");
      if (e.logical >= limit || e.length > limit - e.logical) return bad("extent beyond the largest file size");
      int64_t rg = g.rgrp_of(e.physical);
      if (rg < 0 || rg != g.rgrp_of(e.physical + e.length - 1)) {
        return bad("extent at block " + std::to_string(e.physical) + " (+" +
                   std::to_string(e.length) + ") outside one resource group's data area");
      }
      if (!node.extents.empty() && node.extents.back().logical_end() > e.logical) {
        return bad("extents overlap or are out of order");
      }
      node.extents.push_back(e);
    } else {
      ExtentIndex c{get<uint64_t>(area, off), get<uint64_t>(area, off + 8)};
      off += kExtentIndexEntrySize;
      if (c.logical >= limit) return bad("index entry beyond the largest file size");
      if (g.rgrp_of(c.child) < 0) return bad("child block outside the data area");
      if (!node.children.empty() && node.children.back().logical >= c.logical) {
        return bad("index entries out of order");
      }
      node.children.push_back(c);
    }
  }
  return node;
}

}  // namespace

uint16_t extent_capacity(size_t area_bytes, uint16_t depth) {
  size_t entry = depth == 0 ? kExtentLeafEntrySize : kExtentIndexEntrySize;
  return static_cast<uint16_t>(std::min<size_t>((area_bytes - kExtentNodeBodyHeader) / entry, 0xFFFF));
}

std::vector<uint8_t> encode_extent_root(const ExtentNode& node, uint32_t block_size) {
  std::vector<uint8_t> out(extent_root_area(block_size));
  encode_body(node, std::as_writable_bytes(std::span(out)));
  size_t used = kExtentNodeBodyHeader + (node.depth == 0 ? node.extents.size() * kExtentLeafEntrySize
                                                        : node.children.size() * kExtentIndexEntrySize);
  out.resize(used);
  return out;
}

Result<ExtentNode> decode_extent_root(std::span<const uint8_t> content, uint64_t inode_blocknr,
                                      const Geometry& g) {
  // The inode stores only the used bytes; capacity is that of the whole content area.
  std::vector<uint8_t> area(extent_root_area(g.block_size));
  if (content.size() > area.size()) return corrupt(BlockType::kInode, inode_blocknr, "extent root too large");
  std::copy(content.begin(), content.end(), area.begin());
  auto node = decode_body(std::as_bytes(std::span(area)), BlockType::kInode, inode_blocknr, g);
  if (!node) return node;
  size_t count = node->depth == 0 ? node->extents.size() : node->children.size();
  size_t used = kExtentNodeBodyHeader +
                count * (node->depth == 0 ? kExtentLeafEntrySize : kExtentIndexEntrySize);
  if (used != content.size()) {
    return corrupt(BlockType::kInode, inode_blocknr, "extent root length disagrees with its count");
  }
  return node;
}

void encode_extent_node(const ExtentNode& node, uint64_t owner, std::span<std::byte> b,
                        uint64_t blocknr, uint64_t sequence, uint64_t seed) {
  std::fill(b.begin(), b.end(), std::byte{0});
  put<uint64_t>(b, 32, owner);
  encode_body(node, b.subspan(kExtentBlockBodyOffset));
  seal_block(b, BlockType::kExtentNode, blocknr, sequence, seed);
}

Result<ExtentNode> decode_extent_node(std::span<const std::byte> b, uint64_t blocknr,
                                      uint64_t seed, uint64_t owner, const Geometry& g) {
  LUNFS_TRY(verify_block(b, BlockType::kExtentNode, blocknr, seed));
  uint64_t stored_owner = get<uint64_t>(b, 32);
  if (stored_owner != owner) {
    return corrupt(BlockType::kExtentNode, blocknr,
                   "belongs to inode " + std::to_string(stored_owner) + ", not " + std::to_string(owner));
  }
  return decode_body(b.subspan(kExtentBlockBodyOffset), BlockType::kExtentNode, blocknr, g);
}

}  // namespace lunfs::ondisk

// Directory entry, leaf and hash-table codecs. Offsets: docs/format.md, "Directories".
#include "fs/format/dir_format.h"

#include <dirent.h>
#include <sys/stat.h>
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <tuple>

namespace lunfs::ondisk {

uint32_t dir_name_hash(uint64_t seed, std::string_view name) {
  return static_cast<uint32_t>(XXH64(name.data(), name.size(), seed) >> 32);
}

uint8_t dirent_type(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return DT_REG;
    case S_IFDIR: return DT_DIR;
    case S_IFLNK: return DT_LNK;
    case S_IFCHR: return DT_CHR;
    case S_IFBLK: return DT_BLK;
    case S_IFIFO: return DT_FIFO;
    case S_IFSOCK: return DT_SOCK;
  }
  return DT_UNKNOWN;
}

bool valid_entry_name(std::string_view name) {
  if (name.empty() || name.size() > kNameMaxBytes || name == "." || name == "..") return false;
  return name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

std::vector<uint8_t> encode_dir_entries(const std::vector<DirEntry>& entries) {
  size_t total = 0;
  for (const auto& e : entries) total += e.encoded_size();
  std::vector<uint8_t> out(total);
  auto bytes = std::as_writable_bytes(std::span(out));
  size_t off = 0;
  for (const auto& e : entries) {
    put<uint64_t>(bytes, off, e.inode);
    put<uint32_t>(bytes, off + 8, e.hash);
    put<uint8_t>(bytes, off + 12, e.type);
    put<uint8_t>(bytes, off + 13, static_cast<uint8_t>(e.name.size()));
    std::memcpy(out.data() + off + kDirEntryHeader, e.name.data(), e.name.size());
    off += e.encoded_size();
  }
  return out;
}

Result<std::vector<DirEntry>> decode_dir_entries(std::span<const uint8_t> raw, size_t count,
                                                 uint64_t hash_seed, const Geometry& g,
                                                 BlockType type, uint64_t blocknr) {
  auto bytes = std::as_bytes(raw);
  // The count is on-disk data: check it against the bytes before trusting it with memory.
  if (count > raw.size() / (kDirEntryHeader + 1)) {
    return corrupt(type, blocknr, "claims " + std::to_string(count) + " directory entries in " +
                                      std::to_string(raw.size()) + " bytes");
  }
  std::vector<DirEntry> out;
  out.reserve(count);
  size_t off = 0;
  for (size_t i = 0; i < count; ++i) {
    auto bad = [&](const std::string& what) {
      return corrupt(type, blocknr, "directory entry " + std::to_string(i) + ": " + what);
    };
    if (raw.size() - off < kDirEntryHeader) return bad("runs past the end of its area");
    DirEntry e;
    e.inode = get<uint64_t>(bytes, off);
    e.hash = get<uint32_t>(bytes, off + 8);
    e.type = get<uint8_t>(bytes, off + 12);
    size_t len = get<uint8_t>(bytes, off + 13);
    if (raw.size() - off - kDirEntryHeader < len) return bad("name runs past the end of its area");
    e.name.assign(reinterpret_cast<const char*>(raw.data() + off + kDirEntryHeader), len);
    off += kDirEntryHeader + len;
    if (!valid_entry_name(e.name)) return bad("invalid name");
    if (e.hash != dir_name_hash(hash_seed, e.name)) return bad("hash does not match the name");
    if (g.rgrp_of(e.inode) < 0) return bad("inode " + std::to_string(e.inode) + " outside the data area");
    if (e.type > 14) return bad("unknown entry type");
    if (!out.empty() && std::tie(out.back().hash, out.back().name) >= std::tie(e.hash, e.name)) {
      return bad("entries out of order or duplicated");
    }
    out.push_back(std::move(e));
  }
  if (off != raw.size()) return corrupt(type, blocknr, "directory entries leave trailing bytes");
  return out;
}

void encode_dir_leaf(const DirLeaf& leaf, std::span<std::byte> b, uint64_t blocknr,
                     uint64_t sequence, uint64_t seed) {
  std::fill(b.begin(), b.end(), std::byte{0});
  auto packed = encode_dir_entries(leaf.entries);
  size_t n = std::min(packed.size(), b.size() - kDirLeafEntriesOffset);
  put<uint64_t>(b, 32, leaf.owner);
  put<uint32_t>(b, 40, leaf.hash_prefix);
  put<uint16_t>(b, 44, leaf.depth);
  put<uint16_t>(b, 46, static_cast<uint16_t>(leaf.entries.size()));
  put<uint64_t>(b, 48, leaf.next);
  put<uint32_t>(b, 56, static_cast<uint32_t>(n));
  if (n > 0) std::memcpy(b.data() + kDirLeafEntriesOffset, packed.data(), n);
  seal_block(b, BlockType::kDirLeaf, blocknr, sequence, seed);
}

Result<DirLeaf> decode_dir_leaf(std::span<const std::byte> b, uint64_t blocknr, uint64_t seed,
                                uint64_t hash_seed, uint64_t owner, const Geometry& g) {
  LUNFS_TRY(verify_block(b, BlockType::kDirLeaf, blocknr, seed));
  auto bad = [&](const std::string& what) { return corrupt(BlockType::kDirLeaf, blocknr, what); };
  DirLeaf leaf;
  leaf.owner = get<uint64_t>(b, 32);
  leaf.hash_prefix = get<uint32_t>(b, 40);
  leaf.depth = get<uint16_t>(b, 44);
  uint16_t count = get<uint16_t>(b, 46);
  leaf.next = get<uint64_t>(b, 48);
  uint32_t used = get<uint32_t>(b, 56);
  if (leaf.owner != owner) return bad("belongs to inode " + std::to_string(leaf.owner));
  if (leaf.depth > kMaxDirDepth) return bad("leaf depth above 24");
  if (leaf.depth < 32 && (leaf.hash_prefix >> leaf.depth) != 0) return bad("hash prefix wider than its depth");
  if (used > b.size() - kDirLeafEntriesOffset) return bad("entry bytes beyond the block");
  if (leaf.next != 0 && g.rgrp_of(leaf.next) < 0) return bad("next leaf outside the data area");
  auto raw = std::span(reinterpret_cast<const uint8_t*>(b.data()) + kDirLeafEntriesOffset, used);
  LUNFS_ASSIGN(leaf.entries, decode_dir_entries(raw, count, hash_seed, g, BlockType::kDirLeaf, blocknr));
  for (const auto& e : leaf.entries) {
    if (leaf.depth > 0 && (e.hash >> (32 - leaf.depth)) != leaf.hash_prefix) {
      return bad("entry '" + e.name + "' does not belong in this leaf's hash range");
    }
  }
  return leaf;
}

uint32_t dir_hash_pointers_per_block(uint32_t block_size) {
  uint32_t fit = (block_size - static_cast<uint32_t>(kDirHashPointersOffset)) / 8;
  return std::bit_floor(fit);
}

void encode_dir_hash(const DirHashBlock& h, std::span<std::byte> b, uint64_t blocknr,
                     uint64_t sequence, uint64_t seed) {
  std::fill(b.begin(), b.end(), std::byte{0});
  put<uint64_t>(b, 32, h.owner);
  put<uint32_t>(b, 40, h.table_index);
  size_t n = std::min<size_t>(h.leaves.size(), dir_hash_pointers_per_block(static_cast<uint32_t>(b.size())));
  for (size_t i = 0; i < n; ++i) put<uint64_t>(b, kDirHashPointersOffset + 8 * i, h.leaves[i]);
  seal_block(b, BlockType::kDirHash, blocknr, sequence, seed);
}

Result<DirHashBlock> decode_dir_hash(std::span<const std::byte> b, uint64_t blocknr, uint64_t seed,
                                     uint64_t owner, uint32_t table_index, uint32_t pointers,
                                     const Geometry& g) {
  LUNFS_TRY(verify_block(b, BlockType::kDirHash, blocknr, seed));
  DirHashBlock h;
  h.owner = get<uint64_t>(b, 32);
  h.table_index = get<uint32_t>(b, 40);
  if (h.owner != owner) return corrupt(BlockType::kDirHash, blocknr, "belongs to inode " + std::to_string(h.owner));
  if (h.table_index != table_index) {
    return corrupt(BlockType::kDirHash, blocknr, "is table block " + std::to_string(h.table_index));
  }
  uint32_t per_block = dir_hash_pointers_per_block(g.block_size);
  if (pointers == 0 || pointers > per_block) {
    return corrupt(BlockType::kDirHash, blocknr, "asked for " + std::to_string(pointers) + " pointers");
  }
  h.leaves.resize(pointers);
  for (uint32_t i = 0; i < per_block; ++i) {
    uint64_t p = get<uint64_t>(b, kDirHashPointersOffset + 8 * i);
    if (i >= pointers) {
      if (p != 0) return corrupt(BlockType::kDirHash, blocknr, "pointer beyond the table's size");
      continue;
    }
    if (g.rgrp_of(p) < 0) {
      return corrupt(BlockType::kDirHash, blocknr, "pointer " + std::to_string(i) + " outside the data area");
    }
    h.leaves[i] = p;
  }
  return h;
}

}  // namespace lunfs::ondisk

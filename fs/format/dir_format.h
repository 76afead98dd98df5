// Directories. Small ones keep their entries inline in the inode. Larger ones use
// extendible hashing (as GFS2): a hash table of leaf pointers, 2^depth entries, stored as
// the directory's extent-mapped blocks; each leaf holds the entries whose name hash starts
// with its prefix, sorted by (hash, name), so readdir walks in hash order and a hash-based
// cookie stays valid while entries come and go. Overfull leaves at full depth chain.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fs/format/ondisk.h"
#include "fs/format/superblock.h"

namespace lunfs::ondisk {

inline constexpr size_t kNameMaxBytes = 255;
inline constexpr size_t kDirEntryHeader = 14;  // inode u64, hash u32, type u8, name length u8
inline constexpr size_t kDirLeafEntriesOffset = 64;
inline constexpr size_t kDirHashPointersOffset = 48;
inline constexpr uint32_t kMaxDirDepth = 24;

struct DirEntry {
  uint64_t inode = 0;
  uint32_t hash = 0;
  uint8_t type = 0;  // DT_* from dirent.h
  std::string name;
  size_t encoded_size() const { return kDirEntryHeader + name.size(); }
  bool operator==(const DirEntry&) const = default;
};

uint32_t dir_name_hash(uint64_t seed, std::string_view name);
// The DT_* entry type of a file of this st_mode (DT_UNKNOWN for none).
uint8_t dirent_type(uint32_t mode);
// A name a directory may hold: 1..255 bytes, no '/' or NUL, not "." or "..".
bool valid_entry_name(std::string_view name);

// Packed entries, as stored inline in an inode or in a leaf.
std::vector<uint8_t> encode_dir_entries(const std::vector<DirEntry>& entries);
// Checks names, hashes (against `seed`), sort order and that every inode is in the data area.
Result<std::vector<DirEntry>> decode_dir_entries(std::span<const uint8_t> bytes, size_t count,
                                                 uint64_t hash_seed, const Geometry& g,
                                                 BlockType type, uint64_t blocknr);

struct DirLeaf {
  uint64_t owner = 0;
  uint32_t hash_prefix = 0;  // the top `depth` bits every entry's hash starts with
  uint16_t depth = 0;
  uint64_t next = 0;  // overflow chain; 0 = none
  std::vector<DirEntry> entries;
  bool operator==(const DirLeaf&) const = default;
};

inline size_t dir_leaf_capacity_bytes(uint32_t block_size) { return block_size - kDirLeafEntriesOffset; }
void encode_dir_leaf(const DirLeaf& leaf, std::span<std::byte> b, uint64_t blocknr,
                     uint64_t sequence, uint64_t seed);
Result<DirLeaf> decode_dir_leaf(std::span<const std::byte> b, uint64_t blocknr, uint64_t seed,
                                uint64_t hash_seed, uint64_t owner, const Geometry& g);

struct DirHashBlock {
  uint64_t owner = 0;
  uint32_t table_index = 0;  // which block of the table this is
  std::vector<uint64_t> leaves;
  bool operator==(const DirHashBlock&) const = default;
};

// Pointers per hash-table block: a power of two, so a table of 2^depth pointers fills whole blocks.
uint32_t dir_hash_pointers_per_block(uint32_t block_size);
void encode_dir_hash(const DirHashBlock& h, std::span<std::byte> b, uint64_t blocknr,
                     uint64_t sequence, uint64_t seed);
// `pointers` is how many of the block's slots the table uses (fewer than a block's worth
// only in a table smaller than one block); the unused slots must be 0.
Result<DirHashBlock> decode_dir_hash(std::span<const std::byte> b, uint64_t blocknr, uint64_t seed,
                                     uint64_t owner, uint32_t table_index, uint32_t pointers,
                                     const Geometry& g);

}  // namespace lunfs::ondisk

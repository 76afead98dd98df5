// On-disk format, version 1: constants, block types, and the header every metadata block
// starts with (magic, type, own block number, sequence, xxHash64 checksum). docs/format.md
// is the specification; this file and the *_format.h files are its code.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

#include "fs/result.h"

namespace lunfs::ondisk {

inline constexpr uint32_t kMagic = 0x464E554C;  // bytes "LUNF"
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint64_t kSuperblockOffset = 64 * 1024;  // first 64 KiB left to partitioners
inline constexpr uint32_t kMinBlockSize = 1024;
inline constexpr uint32_t kMaxBlockSize = 64 * 1024;
inline constexpr size_t kHeaderSize = 32;
inline constexpr uint64_t kAlignBytes = 1 << 20;  // journals and rgrps start on 1 MiB bounds

enum class BlockType : uint16_t {
  kSuperblock = 1,
  kSlotHeader = 2,
  kHeartbeat = 3,
  kStatfs = 4,
  kStatfsDelta = 5,
  kRgrpHeader = 6,
  kBitmap = 7,
  kInode = 8,
  kExtentNode = 9,
  kDirHash = 10,
  kDirLeaf = 11,
  kXattr = 12,
  // 0x20..0x2f: journal records (journal/ defines their bodies).
  kLogDescriptor = 0x20,
  kLogCommit = 0x21,
  kLogRevoke = 0x22,
};

const char* block_type_name(BlockType type);

struct BlockHeader {
  uint32_t magic = kMagic;
  BlockType type{};
  uint16_t flags = 0;
  uint64_t blocknr = 0;
  uint64_t sequence = 0;  // journal sequence of the transaction that last wrote the block
  uint64_t checksum = 0;
};

template <typename T>
inline T to_little_endian(T v) {
  if constexpr (std::endian::native == std::endian::big && sizeof(T) == 8) return __builtin_bswap64(v);
  if constexpr (std::endian::native == std::endian::big && sizeof(T) == 4) return __builtin_bswap32(v);
  if constexpr (std::endian::native == std::endian::big && sizeof(T) == 2) return __builtin_bswap16(v);
  return v;
}
// Little-endian field access at fixed offsets; every codec uses these.
template <typename T>
inline T get(std::span<const std::byte> b, size_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof(T));
  return to_little_endian(v);
}
template <typename T>
inline void put(std::span<std::byte> b, size_t off, T v) {
  v = to_little_endian(v);
  std::memcpy(b.data() + off, &v, sizeof(T));
}
// Fixed-size NUL-padded text fields.
std::string get_text(std::span<const std::byte> b, size_t off, size_t len);
void put_text(std::span<std::byte> b, size_t off, size_t len, const std::string& s);

uint64_t block_checksum(std::span<const std::byte> block, uint64_t seed);

// Writes the header of `block` (the body must already be in place) and seals it with its
// checksum. The superblock uses seed 0; every other block the superblock's csum_seed, so a
// block left over from an earlier file system on the same LUN never verifies.
void seal_block(std::span<std::byte> block, BlockType type, uint64_t blocknr, uint64_t sequence,
                uint64_t seed);

// Checks magic, type, block number and checksum. Errors are EIO with a message naming
// the block and what is wrong.
Result<BlockHeader> verify_block(std::span<const std::byte> block, BlockType expected,
                                 uint64_t blocknr, uint64_t seed);
// Reads the header without verifying (fsck uses it to describe what a bad block holds).
BlockHeader peek_header(std::span<const std::byte> block);

// Error helper for decoders: EIO "<what> in <type> block <blocknr>: <detail>".
Status corrupt(BlockType type, uint64_t blocknr, const std::string& detail);

}  // namespace lunfs::ondisk

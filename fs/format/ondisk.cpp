// Block header, checksum and field codecs shared by every on-disk structure.
#include "fs/format/ondisk.h"

#define XXH_STATIC_LINKING_ONLY  // stack-allocated XXH64_state_t
#include <xxhash.h>

#include <algorithm>

namespace lunfs::ondisk {

const char* block_type_name(BlockType type) {
  switch (type) {
    case BlockType::kSuperblock: return "superblock";
    case BlockType::kSlotHeader: return "slot header";
    case BlockType::kHeartbeat: return "heartbeat";
    case BlockType::kStatfs: return "statfs";
    case BlockType::kStatfsDelta: return "statfs delta";
    case BlockType::kRgrpHeader: return "resource group header";
    case BlockType::kBitmap: return "allocation bitmap";
    case BlockType::kInode: return "inode";
    case BlockType::kExtentNode: return "extent node";
    case BlockType::kDirHash: return "directory hash table";
    case BlockType::kDirLeaf: return "directory leaf";
    case BlockType::kXattr: return "xattr";
    case BlockType::kLogDescriptor: return "journal descriptor";
    case BlockType::kLogCommit: return "journal commit";
    case BlockType::kLogRevoke: return "journal revoke";
  }
  return "unknown";
}

std::string get_text(std::span<const std::byte> b, size_t off, size_t len) {
  const char* p = reinterpret_cast<const char*>(b.data() + off);
  return std::string(p, strnlen(p, len));
}

void put_text(std::span<std::byte> b, size_t off, size_t len, const std::string& s) {
  std::memset(b.data() + off, 0, len);
  std::memcpy(b.data() + off, s.data(), std::min(len, s.size()));
}

uint64_t block_checksum(std::span<const std::byte> block, uint64_t seed) {
  // The checksum field (bytes 24..31) counts as absent.
  XXH64_state_t state;
  XXH64_reset(&state, seed);
  XXH64_update(&state, block.data(), 24);
  XXH64_update(&state, block.data() + kHeaderSize, block.size() - kHeaderSize);
  return XXH64_digest(&state);
}

void seal_block(std::span<std::byte> block, BlockType type, uint64_t blocknr, uint64_t sequence,
                uint64_t seed) {
  put<uint32_t>(block, 0, kMagic);
  put<uint16_t>(block, 4, static_cast<uint16_t>(type));
  put<uint16_t>(block, 6, 0);
  put<uint64_t>(block, 8, blocknr);
  put<uint64_t>(block, 16, sequence);
  put<uint64_t>(block, 24, block_checksum(block, seed));
}

BlockHeader peek_header(std::span<const std::byte> block) {
  BlockHeader h;
  h.magic = get<uint32_t>(block, 0);
  h.type = static_cast<BlockType>(get<uint16_t>(block, 4));
  h.flags = get<uint16_t>(block, 6);
  h.blocknr = get<uint64_t>(block, 8);
  h.sequence = get<uint64_t>(block, 16);
  h.checksum = get<uint64_t>(block, 24);
  return h;
}

Status corrupt(BlockType type, uint64_t blocknr, const std::string& detail) {
  return error(EIO, std::string(block_type_name(type)) + " block " + std::to_string(blocknr) +
                        ": " + detail);
}

Result<BlockHeader> verify_block(std::span<const std::byte> block, BlockType expected,
                                 uint64_t blocknr, uint64_t seed) {
  if (block.size() < kMinBlockSize) return corrupt(expected, blocknr, "block too small");
  BlockHeader h = peek_header(block);
  if (h.magic != kMagic) {
    bool all_zero = true;
    for (std::byte b : block.first(64)) all_zero &= (b == std::byte{0});
    return corrupt(expected, blocknr, all_zero ? "block is empty (zeros), expected lunfs metadata"
                                               : "bad magic number (not lunfs metadata)");
  }
  if (h.type != expected) {
    return corrupt(expected, blocknr,
                   std::string("holds a ") + block_type_name(h.type) + " (type " +
                       std::to_string(static_cast<unsigned>(h.type)) + ")");
  }
  if (h.blocknr != blocknr) {
    return corrupt(expected, blocknr,
                   "says it belongs at block " + std::to_string(h.blocknr) + " (misdirected write?)");
  }
  if (block_checksum(block, seed) != h.checksum) {
    return corrupt(expected, blocknr, "checksum mismatch");
  }
  return h;
}

}  // namespace lunfs::ondisk

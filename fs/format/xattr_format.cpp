// Xattr block codec. Offsets: docs/format.md, "Extended attributes".
#include "fs/format/xattr_format.h"

#include <algorithm>
#include <tuple>

namespace lunfs::ondisk {

void encode_xattr_block(const XattrBlock& x, std::span<std::byte> b, uint64_t blocknr,
                        uint64_t sequence, uint64_t seed) {
  std::fill(b.begin(), b.end(), std::byte{0});
  put<uint64_t>(b, 32, x.owner);
  size_t off = kXattrEntriesOffset;
  uint16_t count = 0;
  for (const auto& e : x.entries) {
    if (off + e.encoded_size() > b.size()) break;
    put<uint8_t>(b, off, static_cast<uint8_t>(e.ns));
    put<uint8_t>(b, off + 1, static_cast<uint8_t>(e.name.size()));
    put<uint16_t>(b, off + 2, static_cast<uint16_t>(e.value.size()));
    std::memcpy(b.data() + off + kXattrEntryHeader, e.name.data(), e.name.size());
    std::memcpy(b.data() + off + kXattrEntryHeader + e.name.size(), e.value.data(), e.value.size());
    off += e.encoded_size();
    ++count;
  }
  put<uint16_t>(b, 40, count);
  put<uint32_t>(b, 44, static_cast<uint32_t>(off - kXattrEntriesOffset));
  seal_block(b, BlockType::kXattr, blocknr, sequence, seed);
}

Result<XattrBlock> decode_xattr_block(std::span<const std::byte> b, uint64_t blocknr, uint64_t seed,
                                      uint64_t owner) {
  LUNFS_TRY(verify_block(b, BlockType::kXattr, blocknr, seed));
  auto bad = [&](const std::string& what) { return corrupt(BlockType::kXattr, blocknr, what); };
  XattrBlock x;
  x.owner = get<uint64_t>(b, 32);
  if (x.owner != owner) return bad("belongs to inode " + std::to_string(x.owner));
  uint16_t count = get<uint16_t>(b, 40);
  uint32_t used = get<uint32_t>(b, 44);
  if (used > b.size() - kXattrEntriesOffset) return bad("entry bytes beyond the block");
  size_t off = kXattrEntriesOffset, end = kXattrEntriesOffset + used;
  for (uint16_t i = 0; i < count; ++i) {
    if (end - off < kXattrEntryHeader) return bad("entry " + std::to_string(i) + " runs past the end");
    Xattr e;
    uint8_t ns = get<uint8_t>(b, off);
    size_t name_len = get<uint8_t>(b, off + 1);
    size_t value_len = get<uint16_t>(b, off + 2);
    if (ns < 1 || ns > 5) return bad("entry " + std::to_string(i) + ": unknown namespace");
    e.ns = static_cast<XattrNamespace>(ns);
    if (end - off - kXattrEntryHeader < name_len + value_len) {
      return bad("entry " + std::to_string(i) + " runs past the end");
    }
    bool acl = e.ns == XattrNamespace::kPosixAclAccess || e.ns == XattrNamespace::kPosixAclDefault;
    if (acl != (name_len == 0)) return bad("entry " + std::to_string(i) + ": name does not fit its namespace");
    const char* p = reinterpret_cast<const char*>(b.data() + off + kXattrEntryHeader);
    e.name.assign(p, name_len);
    e.value.assign(p + name_len, value_len);
    if (e.name.find('\0') != std::string::npos) return bad("entry " + std::to_string(i) + ": NUL in name");
    if (!x.entries.empty() && std::tie(x.entries.back().ns, x.entries.back().name) >= std::tie(e.ns, e.name)) {
      return bad("entries out of order or duplicated");
    }
    off += e.encoded_size();
    x.entries.push_back(std::move(e));
  }
  if (off != end) return bad("entries leave trailing bytes");
  return x;
}

}  // namespace lunfs::ondisk

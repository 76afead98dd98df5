// Extended attributes: one block per inode holding its (namespace, name, value) entries,
// sorted. ACLs live here as the system.posix_acl_* namespaces with an empty name.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fs/format/ondisk.h"
#include "fs/format/superblock.h"

namespace lunfs::ondisk {

enum class XattrNamespace : uint8_t {
  kUser = 1,
  kTrusted = 2,
  kSecurity = 3,
  kPosixAclAccess = 4,   // system.posix_acl_access
  kPosixAclDefault = 5,  // system.posix_acl_default
};

inline constexpr size_t kXattrEntriesOffset = 48;
inline constexpr size_t kXattrEntryHeader = 4;  // namespace u8, name length u8, value length u16

struct Xattr {
  XattrNamespace ns = XattrNamespace::kUser;
  std::string name;  // without the namespace prefix
  std::string value;
  size_t encoded_size() const { return kXattrEntryHeader + name.size() + value.size(); }
  bool operator==(const Xattr&) const = default;
};

struct XattrBlock {
  uint64_t owner = 0;
  std::vector<Xattr> entries;
  bool operator==(const XattrBlock&) const = default;
};

inline size_t xattr_capacity_bytes(uint32_t block_size) { return block_size - kXattrEntriesOffset; }
void encode_xattr_block(const XattrBlock& x, std::span<std::byte> b, uint64_t blocknr,
                        uint64_t sequence, uint64_t seed);
Result<XattrBlock> decode_xattr_block(std::span<const std::byte> b, uint64_t blocknr, uint64_t seed,
                                      uint64_t owner);

}  // namespace lunfs::ondisk

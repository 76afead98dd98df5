// POSIX ACLs in their xattr form (system.posix_acl_access / _default: version 2, then
// 8-byte (tag, perm, id) entries). The kernel enforces ACLs (FUSE POSIX ACL support), but
// a FUSE server must keep them and the mode in step, as a kernel file system's set_acl,
// chmod and create do: the mode's permission bits mirror the owner, group-class (mask)
// and other entries; a new inode inherits its directory's default ACL.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fs/result.h"

namespace lunfs {

struct AclEntry {
  uint16_t tag;
  uint16_t perm;
  uint32_t id;
};

inline constexpr uint16_t kAclUserObj = 0x01, kAclUser = 0x02, kAclGroupObj = 0x04, kAclGroup = 0x08,
                          kAclMask = 0x10, kAclOther = 0x20;

// EINVAL when the value is not a valid ACL.
Result<std::vector<AclEntry>> parse_acl(const std::string& value);
std::string encode_acl(const std::vector<AclEntry>& acl);
// The permission bits the ACL implies; *equivalent tells whether the mode alone says it all.
uint32_t acl_mode(const std::vector<AclEntry>& acl, bool* equivalent);
// chmod: the ACL entries that mirror the mode take the new bits.
void acl_chmod(std::vector<AclEntry>& acl, uint32_t mode);
// create: the default ACL masked by the create mode; *mode is masked by the ACL in turn.
std::vector<AclEntry> acl_for_create(const std::vector<AclEntry>& dflt, uint32_t* mode);

}  // namespace lunfs

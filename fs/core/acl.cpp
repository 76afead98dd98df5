// POSIX ACL helpers; see acl.h. Semantics follow Linux's fs/posix_acl.c.
#include "fs/core/acl.h"

#include <algorithm>
#include <cstring>

namespace lunfs {

Result<std::vector<AclEntry>> parse_acl(const std::string& value) {
  if (value.size() < 4 || (value.size() - 4) % 8 != 0) return error(EINVAL, "malformed ACL");
  uint32_t version;
  std::memcpy(&version, value.data(), 4);
  if (version != 2) return error(EINVAL, "unknown ACL version");
  std::vector<AclEntry> acl;
  int user_obj = 0, group_obj = 0, other = 0, mask = 0, named = 0;
  for (size_t off = 4; off < value.size(); off += 8) {
    AclEntry e;
    std::memcpy(&e.tag, value.data() + off, 2);
    std::memcpy(&e.perm, value.data() + off + 2, 2);
    std::memcpy(&e.id, value.data() + off + 4, 4);
    if (e.perm & ~7u) return error(EINVAL, "ACL permission bits out of range");
    switch (e.tag) {
      case kAclUserObj: ++user_obj; break;
      case kAclGroupObj: ++group_obj; break;
      case kAclOther: ++other; break;
      case kAclMask: ++mask; break;
      case kAclUser: case kAclGroup: ++named; break;
      default: return error(EINVAL, "unknown ACL tag");
    }
    acl.push_back(e);
  }
  if (user_obj != 1 || group_obj != 1 || other != 1 || mask > 1 || (named && !mask)) {
    return error(EINVAL, "ACL without its required entries");
  }
  return acl;
}

std::string encode_acl(const std::vector<AclEntry>& acl) {
  std::string out(4 + 8 * acl.size(), '\0');
  uint32_t version = 2;
  std::memcpy(out.data(), &version, 4);
  for (size_t i = 0; i < acl.size(); ++i) {
    std::memcpy(out.data() + 4 + 8 * i, &acl[i].tag, 2);
    std::memcpy(out.data() + 6 + 8 * i, &acl[i].perm, 2);
    std::memcpy(out.data() + 8 + 8 * i, &acl[i].id, 4);
  }
  return out;
}

uint32_t acl_mode(const std::vector<AclEntry>& acl, bool* equivalent) {
  uint32_t mode = 0, group_obj = 0;
  bool has_mask = false;
  *equivalent = true;
  for (const auto& e : acl) {
    switch (e.tag) {
      case kAclUserObj: mode |= uint32_t{e.perm} << 6; break;
      case kAclGroupObj: group_obj = e.perm; break;
      case kAclOther: mode |= e.perm; break;
      case kAclMask:
        has_mask = true;
        mode |= uint32_t{e.perm} << 3;
        *equivalent = false;
        break;
      default: *equivalent = false;
    }
  }
  if (!has_mask) mode |= group_obj << 3;
  return mode;
}

void acl_chmod(std::vector<AclEntry>& acl, uint32_t mode) {
  bool has_mask = std::any_of(acl.begin(), acl.end(), [](const AclEntry& e) { return e.tag == kAclMask; });
  for (auto& e : acl) {
    if (e.tag == kAclUserObj) e.perm = (mode >> 6) & 7;
    if (e.tag == kAclOther) e.perm = mode & 7;
    if (e.tag == (has_mask ? kAclMask : kAclGroupObj)) e.perm = (mode >> 3) & 7;
  }
}

std::vector<AclEntry> acl_for_create(const std::vector<AclEntry>& dflt, uint32_t* mode) {
  std::vector<AclEntry> acl = dflt;
  bool has_mask = std::any_of(acl.begin(), acl.end(), [](const AclEntry& e) { return e.tag == kAclMask; });
  uint32_t m = *mode;
  uint32_t keep = m & ~0777u;
  uint32_t perms = m & 0777;
  for (auto& e : acl) {
    if (e.tag == kAclUserObj) {
      e.perm &= (perms >> 6) & 7;
      perms &= (uint32_t{e.perm} << 6) | 077;
    } else if (e.tag == kAclOther) {
      e.perm &= perms & 7;
      perms &= e.perm | 0770;
    } else if (e.tag == (has_mask ? kAclMask : kAclGroupObj)) {
      e.perm &= (perms >> 3) & 7;
      perms &= (uint32_t{e.perm} << 3) | 0707;
    }
  }
  *mode = keep | perms;
  return acl;
}

}  // namespace lunfs

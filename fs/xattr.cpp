// Extended attributes: one block per inode holding every (namespace, name, value), sorted
// (xattr_format.h). The block is allocated with the first attribute and freed with the
// last. POSIX ACLs are the system.posix_acl_* attributes; the kernel enforces them
// (the FUSE frontend enables POSIX ACL support), the core only stores them.
#include <algorithm>
#include <tuple>

#include "fs/filesystem.h"
#include "fs/volume.h"
#include "fs/xattr_format.h"

namespace lunfs {

using namespace ondisk;

namespace {

constexpr int kXattrCreate = 1, kXattrReplace = 2;

struct XName {
  XattrNamespace ns;
  std::string name;
};

Result<XName> parse_name(const std::string& full) {
  if (full.size() > 255) return error(ERANGE, "xattr name longer than 255 bytes");
  if (full == "system.posix_acl_access") return XName{XattrNamespace::kPosixAclAccess, ""};
  if (full == "system.posix_acl_default") return XName{XattrNamespace::kPosixAclDefault, ""};
  struct {
    const char* prefix;
    XattrNamespace ns;
  } prefixes[] = {{"user.", XattrNamespace::kUser}, {"trusted.", XattrNamespace::kTrusted},
                  {"security.", XattrNamespace::kSecurity}};
  for (const auto& p : prefixes) {
    std::string_view pre(p.prefix);
    if (full.compare(0, pre.size(), pre) == 0) {
      std::string rest = full.substr(pre.size());
      if (rest.empty()) return error(EINVAL, "empty xattr name");
      return XName{p.ns, rest};
    }
  }
  return error(EOPNOTSUPP, "xattr namespace of '" + full + "' not supported");
}

std::string full_name(const Xattr& x) {
  switch (x.ns) {
    case XattrNamespace::kUser: return "user." + x.name;
    case XattrNamespace::kTrusted: return "trusted." + x.name;
    case XattrNamespace::kSecurity: return "security." + x.name;
    case XattrNamespace::kPosixAclAccess: return "system.posix_acl_access";
    case XattrNamespace::kPosixAclDefault: return "system.posix_acl_default";
  }
  return "";
}

size_t used_bytes(const XattrBlock& b) {
  size_t n = 0;
  for (const auto& e : b.entries) n += e.encoded_size();
  return n;
}

}  // namespace

namespace {
Result<XattrBlock> load_xattrs(Volume& vol, CoreInode& node, Transaction* txn) {
  XattrBlock b;
  b.owner = node.ino();
  if (node.d.xattr_block == 0) return b;
  auto img = txn ? txn->read(node.d.xattr_block) : vol.cache.get(node.d.xattr_block);
  if (!img) return img.status();
  auto x = decode_xattr_block((*img)->span(), node.d.xattr_block, vol.sb.csum_seed, node.ino());
  if (!x) vol.log_line("lunfs: inode " + std::to_string(node.ino()) + ": " + x.status().message());
  return x;
}
}  // namespace

Result<std::string> FileSystem::getxattr(uint64_t ino, const std::string& name) {
  LUNFS_ASSIGN(XName xn, parse_name(name));
  LUNFS_ASSIGN(auto gl, vol_->glocks.lock({GlockType::kInode, ino}, GlockMode::kShared));
  std::lock_guard lock(vol_->meta_mu);
  LUNFS_ASSIGN(auto node, inode(ino));
  LUNFS_ASSIGN(XattrBlock b, load_xattrs(*vol_, *node, nullptr));
  for (const auto& e : b.entries) {
    if (e.ns == xn.ns && e.name == xn.name) return e.value;
  }
  return error(ENODATA, name + ": no such attribute");
}

Result<std::vector<std::string>> FileSystem::listxattr(uint64_t ino) {
  LUNFS_ASSIGN(auto gl, vol_->glocks.lock({GlockType::kInode, ino}, GlockMode::kShared));
  std::lock_guard lock(vol_->meta_mu);
  LUNFS_ASSIGN(auto node, inode(ino));
  LUNFS_ASSIGN(XattrBlock b, load_xattrs(*vol_, *node, nullptr));
  std::vector<std::string> out;
  for (const auto& e : b.entries) out.push_back(full_name(e));
  return out;
}

Status FileSystem::setxattr(uint64_t ino, const std::string& name, const std::string& value, int flags) {
  LUNFS_ASSIGN(XName xn, parse_name(name));
  if (value.size() > 65535) return error(E2BIG, "xattr value larger than 64 KiB");
  LUNFS_TRY(vol_->check_writable());
  LUNFS_ASSIGN(auto gl, vol_->glocks.lock({GlockType::kInode, ino}, GlockMode::kExclusive));
  std::lock_guard lock(vol_->meta_mu);
  LUNFS_ASSIGN(auto node, inode(ino));
  LUNFS_ASSIGN(XattrBlock b, load_xattrs(*vol_, *node, nullptr));
  auto it = std::find_if(b.entries.begin(), b.entries.end(),
                         [&](const Xattr& e) { return e.ns == xn.ns && e.name == xn.name; });
  if (it != b.entries.end() && (flags & kXattrCreate)) return error(EEXIST, name + ": attribute exists");
  if (it == b.entries.end() && (flags & kXattrReplace)) return error(ENODATA, name + ": no such attribute");
  if (it != b.entries.end()) {
    it->value = value;
  } else {
    Xattr x{xn.ns, xn.name, value};
    auto pos = std::upper_bound(b.entries.begin(), b.entries.end(), x, [](const Xattr& a, const Xattr& c) {
      return std::tie(a.ns, a.name) < std::tie(c.ns, c.name);
    });
    b.entries.insert(pos, x);
  }
  if (used_bytes(b) > xattr_capacity_bytes(vol_->bs) || b.entries.size() > 0xFFFF) {
    return error(ENOSPC, "no room for the attribute in the inode's xattr block");
  }
  auto txn = vol_->begin();
  if (node->d.xattr_block == 0) {
    LUNFS_ASSIGN(Allocator::Run run, vol_->alloc.alloc_blocks(*txn, ino + 1, 1));
    node->d.xattr_block = run.start;
    node->d.blocks += 1;
  }
  auto img = txn->new_block();
  encode_xattr_block(b, img->span(), node->d.xattr_block, txn->sequence(), vol_->sb.csum_seed);
  txn->put(node->d.xattr_block, img);
  node->d.ctime = now_timespec();
  node->dirty(*txn);
  return txn->commit();
}

Status FileSystem::removexattr(uint64_t ino, const std::string& name) {
  LUNFS_ASSIGN(XName xn, parse_name(name));
  LUNFS_TRY(vol_->check_writable());
  LUNFS_ASSIGN(auto gl, vol_->glocks.lock({GlockType::kInode, ino}, GlockMode::kExclusive));
  std::lock_guard lock(vol_->meta_mu);
  LUNFS_ASSIGN(auto node, inode(ino));
  LUNFS_ASSIGN(XattrBlock b, load_xattrs(*vol_, *node, nullptr));
  auto it = std::find_if(b.entries.begin(), b.entries.end(),
                         [&](const Xattr& e) { return e.ns == xn.ns && e.name == xn.name; });
  if (it == b.entries.end()) return error(ENODATA, name + ": no such attribute");
  b.entries.erase(it);
  auto txn = vol_->begin();
  if (b.entries.empty()) {
    LUNFS_TRY(vol_->alloc.free_blocks(*txn, node->d.xattr_block, 1));
    txn->revoke(node->d.xattr_block);
    node->d.xattr_block = 0;
    node->d.blocks -= 1;
  } else {
    auto img = txn->new_block();
    encode_xattr_block(b, img->span(), node->d.xattr_block, txn->sequence(), vol_->sb.csum_seed);
    txn->put(node->d.xattr_block, img);
  }
  node->d.ctime = now_timespec();
  node->dirty(*txn);
  return txn->commit();
}

}  // namespace lunfs

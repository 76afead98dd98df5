// Extended attributes: one block per inode holding every (namespace, name, value), sorted
// (xattr_format.h). POSIX ACLs are the system.posix_acl_* attributes: the kernel enforces
// them, the core keeps them in step with the mode (acl.h).
#include "fs/core/xattr.h"

#include <algorithm>
#include <tuple>

#include "fs/core/acl.h"
#include "fs/core/filesystem.h"
#include "fs/core/volume.h"

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

}  // namespace

Result<XattrBlock> XattrStore::load() {
  XattrBlock b;
  b.owner = node_.ino();
  if (node_.d.xattr_block == 0) return b;
  auto img = txn_ ? txn_->read(node_.d.xattr_block) : vol_.cache.get(node_.d.xattr_block);
  if (!img) return img.status();
  auto x = decode_xattr_block((*img)->span(), node_.d.xattr_block, vol_.sb.csum_seed, node_.ino());
  if (!x) vol_.log_line("lunfs: inode " + std::to_string(node_.ino()) + ": " + x.status().message());
  return x;
}

Status XattrStore::store(const XattrBlock& b) {
  size_t used = 0;
  for (const auto& e : b.entries) used += e.encoded_size();
  if (used > xattr_capacity_bytes(vol_.bs) || b.entries.size() > 0xFFFF) {
    return error(ENOSPC, "no room for the attribute in the inode's xattr block");
  }
  if (b.entries.empty()) {
    if (node_.d.xattr_block) {
      LUNFS_TRY(vol_.alloc.free_blocks(*txn_, node_.d.xattr_block, 1));
      txn_->revoke(node_.d.xattr_block);
      node_.d.xattr_block = 0;
      node_.d.blocks -= 1;
    }
  } else {
    if (node_.d.xattr_block == 0) {
      LUNFS_ASSIGN(Allocator::Run run, vol_.alloc.alloc_blocks(*txn_, node_.ino() + 1, 1));
      node_.d.xattr_block = run.start;
      node_.d.blocks += 1;
    }
    auto img = txn_->new_block();
    encode_xattr_block(b, img->span(), node_.d.xattr_block, txn_->sequence(), vol_.sb.csum_seed);
    txn_->put(node_.d.xattr_block, img);
  }
  node_.dirty(*txn_);
  return Status::ok();
}

Result<std::optional<std::string>> XattrStore::get(XattrNamespace ns, const std::string& name) {
  LUNFS_ASSIGN(XattrBlock b, load());
  for (auto& e : b.entries) {
    if (e.ns == ns && e.name == name) return std::optional<std::string>(std::move(e.value));
  }
  return std::optional<std::string>();
}

Status XattrStore::put(XattrNamespace ns, const std::string& name, const std::optional<std::string>& value) {
  LUNFS_ASSIGN(XattrBlock b, load());
  auto it = std::find_if(b.entries.begin(), b.entries.end(), [&](const Xattr& e) { return e.ns == ns && e.name == name; });
  if (!value) {
    if (it == b.entries.end()) return Status::ok();
    b.entries.erase(it);
  } else if (it != b.entries.end()) {
    it->value = *value;
  } else {
    Xattr x{ns, name, *value};
    auto pos = std::upper_bound(b.entries.begin(), b.entries.end(), x, [](const Xattr& a, const Xattr& c) {
      return std::tie(a.ns, a.name) < std::tie(c.ns, c.name);
    });
    b.entries.insert(pos, x);
  }
  return store(b);
}

Result<std::string> FileSystem::getxattr(uint64_t ino, const std::string& name) {
  LUNFS_ASSIGN(XName xn, parse_name(name));
  LUNFS_ASSIGN(auto gl, vol_->glocks.lock({GlockType::kInode, ino}, GlockMode::kShared));
  std::lock_guard lock(vol_->meta_mu);
  LUNFS_ASSIGN(auto node, inode(ino));
  LUNFS_ASSIGN(auto v, XattrStore(*vol_, *node, nullptr).get(xn.ns, xn.name));
  if (!v) return error(ENODATA, name + ": no such attribute");
  return *v;
}

Result<std::vector<std::string>> FileSystem::listxattr(uint64_t ino) {
  LUNFS_ASSIGN(auto gl, vol_->glocks.lock({GlockType::kInode, ino}, GlockMode::kShared));
  std::lock_guard lock(vol_->meta_mu);
  LUNFS_ASSIGN(auto node, inode(ino));
  LUNFS_ASSIGN(XattrBlock b, XattrStore(*vol_, *node, nullptr).load());
  std::vector<std::string> out;
  for (const auto& e : b.entries) out.push_back(full_name(e));
  return out;
}

Status FileSystem::setxattr(uint64_t ino, const std::string& name, const std::string& value, int flags) {
  LUNFS_ASSIGN(XName xn, parse_name(name));
  if (value.size() > 65535) return error(E2BIG, "xattr value larger than 64 KiB");
  LUNFS_TRY(vol_->check_writable());
  return retrying([&]() -> Status {
    LUNFS_ASSIGN(auto gl, vol_->glocks.lock({GlockType::kInode, ino}, GlockMode::kExclusive));
    std::lock_guard lock(vol_->meta_mu);
    LUNFS_ASSIGN(auto node, inode(ino));
    XattrStore store(*vol_, *node, nullptr);
    LUNFS_ASSIGN(auto old, store.get(xn.ns, xn.name));
    if (old && (flags & kXattrCreate)) return error(EEXIST, name + ": attribute exists");
    if (!old && (flags & kXattrReplace)) return error(ENODATA, name + ": no such attribute");
    auto txn = vol_->begin();
    XattrStore tstore(*vol_, *node, txn.get());
    std::optional<std::string> stored = value;
    if (xn.ns == XattrNamespace::kPosixAclAccess) {
      // The mode mirrors the ACL; an ACL the mode fully expresses is not stored (Linux's
      // posix_acl_update_mode).
      LUNFS_ASSIGN(auto acl, parse_acl(value));
      bool equivalent = false;
      uint32_t perms = acl_mode(acl, &equivalent);
      node->d.mode = (node->d.mode & ~0777u) | perms;
      if (equivalent) stored.reset();
    } else if (xn.ns == XattrNamespace::kPosixAclDefault) {
      if (!node->is_dir()) return error(EACCES, "default ACLs are for directories");
      LUNFS_TRY(parse_acl(value));
    }
    LUNFS_TRY(tstore.put(xn.ns, xn.name, stored));
    node->d.ctime = now_timespec();
    node->dirty(*txn);
    return txn->commit();
  });
}

Status FileSystem::removexattr(uint64_t ino, const std::string& name) {
  LUNFS_ASSIGN(XName xn, parse_name(name));
  LUNFS_TRY(vol_->check_writable());
  return retrying([&]() -> Status {
    LUNFS_ASSIGN(auto gl, vol_->glocks.lock({GlockType::kInode, ino}, GlockMode::kExclusive));
    std::lock_guard lock(vol_->meta_mu);
    LUNFS_ASSIGN(auto node, inode(ino));
    LUNFS_ASSIGN(auto old, XattrStore(*vol_, *node, nullptr).get(xn.ns, xn.name));
    if (!old) return error(ENODATA, name + ": no such attribute");
    auto txn = vol_->begin();
    LUNFS_TRY(XattrStore(*vol_, *node, txn.get()).put(xn.ns, xn.name, std::nullopt));
    node->d.ctime = now_timespec();
    node->dirty(*txn);
    return txn->commit();
  });
}

}  // namespace lunfs

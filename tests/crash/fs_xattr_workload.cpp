// The xattr workload: two files and a directory get user.* attributes with small and large
// values (large ones fill most of the inode's xattr block), replaced with other sizes,
// removed — down to none, which frees the block, and up again, which allocates a new one —
// and POSIX ACLs (access ACLs that change the mode, a default ACL on the directory), with
// fsync acknowledgements. Every operation is one transaction, and the journal keeps a
// prefix of them, so after a crash all three inodes must show the attributes (and modes)
// of one single state between the acknowledged operation and the next fsync.
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>

#include "tests/crash/fs_workload_support.h"
#include "tests/crash/fs_workloads.h"

namespace lunfs::crash {

namespace {

constexpr int kXattrCreate = 1, kXattrReplace = 2;
const char* const kAccessAcl = "system.posix_acl_access";
const char* const kDefaultAcl = "system.posix_acl_default";

struct XattrOp {
  enum class Kind { kCreateFile, kCreateDir, kSet, kRemove };
  Kind kind = Kind::kSet;
  uint32_t inode = 0;  // 0, 2: files, 1: the directory
  std::string name;    // full xattr name
  std::string value;
  int flags = 0;
  uint32_t mode = 0;  // kSet of an access ACL: the permission bits it implies
  bool fsync = false;
};

const char* inode_name(uint32_t i) { return i == 0 ? "file-a" : i == 1 ? "dir-d" : "file-b"; }

// An ACL in its xattr form (version 2; tag, perm, id entries), with a named user so that
// the mode cannot express it and it is stored.
std::string acl_value(uint32_t user, uint32_t group, uint32_t mask, uint32_t other, uint32_t named_uid) {
  std::string v;
  auto u16 = [&](uint32_t x) { v.push_back(static_cast<char>(x & 0xff)), v.push_back(static_cast<char>(x >> 8)); };
  auto u32 = [&](uint32_t x) { u16(x & 0xffff), u16(x >> 16); };
  auto entry = [&](uint32_t tag, uint32_t perm, uint32_t id) { u16(tag), u16(perm), u32(id); };
  u32(2);
  entry(0x01, user, 0xffffffff);
  entry(0x02, 4, named_uid);
  entry(0x04, group, 0xffffffff);
  entry(0x10, mask, 0xffffffff);
  entry(0x20, other, 0xffffffff);
  return v;
}

struct InodeState {
  bool exists = false;
  uint32_t mode = 0;  // permission bits
  std::map<std::string, std::string> xattrs;
};
using State = std::vector<InodeState>;

// The bytes an attribute takes in the xattr block (entry header, name without prefix, value).
size_t encoded(const std::string& name, const std::string& value) {
  const size_t prefix = name.rfind("user.", 0) == 0 ? 5 : name.size();
  return 4 + name.size() - prefix + value.size();
}

std::vector<XattrOp> generate(uint64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<XattrOp> ops;
  State st(3);
  ops.push_back({XattrOp::Kind::kCreateFile, 0, "", "", 0, 0, true});
  ops.push_back({XattrOp::Kind::kCreateDir, 1, "", "", 0, 0, false});
  ops.push_back({XattrOp::Kind::kCreateFile, 2, "", "", 0, 0, true});
  uint32_t next_name = 0;
  std::vector<std::string> clearing;  // a phase removing every attribute of one inode
  uint32_t clearing_inode = 0;
  while (ops.size() < count) {
    XattrOp op;
    const uint64_t k = ops.size() + 1;
    if (!clearing.empty()) {
      op.kind = XattrOp::Kind::kRemove;
      op.inode = clearing_inode;
      op.name = clearing.back();
      clearing.pop_back();
    } else if (rng() % 12 == 0) {
      clearing_inode = static_cast<uint32_t>(rng() % 3);
      for (const auto& [name, value] : st[clearing_inode].xattrs) clearing.push_back(name);
      continue;
    } else {
      op.inode = static_cast<uint32_t>(rng() % 3);
      auto& attrs = st[op.inode].xattrs;
      size_t used = 0;
      std::vector<std::string> user_names;
      for (const auto& [name, value] : attrs) {
        used += encoded(name, value);
        if (name.rfind("user.", 0) == 0) user_names.push_back(name);
      }
      const uint32_t r = static_cast<uint32_t>(rng() % 10);
      if (r < 2 && !attrs.empty()) {
        op.kind = XattrOp::Kind::kRemove;
        auto it = std::next(attrs.begin(), static_cast<long>(rng() % attrs.size()));
        op.name = it->first;
      } else {
        op.kind = XattrOp::Kind::kSet;
        if (r == 2) {
          const uint32_t u = 4 + rng() % 4, g = rng() % 8, m = rng() % 8, o = rng() % 8;
          op.name = kAccessAcl;
          op.value = acl_value(u, g, m, o, 1000 + static_cast<uint32_t>(k));
          op.mode = u << 6 | m << 3 | o;
        } else if (r == 3 && op.inode == 1) {
          op.name = kDefaultAcl;
          op.value = acl_value(7, 5, 7, static_cast<uint32_t>(rng() % 8), 2000 + static_cast<uint32_t>(k));
        } else if (r < 6 && !user_names.empty()) {  // replace one, with another size
          op.name = user_names[rng() % user_names.size()];
          op.flags = rng() % 2 ? kXattrReplace : 0;
        } else {
          op.name = "user.attr" + std::to_string(next_name++) + std::string(rng() % 40, 'n');
          op.flags = rng() % 2 ? kXattrCreate : 0;
        }
        if (op.value.empty()) {
          const size_t len = rng() % 3 == 0 ? 1000 + rng() % 1500 : 1 + rng() % 120;  // large: most of the block
          for (size_t i = 0; i < len; ++i) op.value.push_back(static_cast<char>('a' + (k * 7 + i) % 26));
        }
        const size_t old = attrs.count(op.name) ? encoded(op.name, attrs[op.name]) : 0;
        if (used - old + encoded(op.name, op.value) > 3900) continue;  // would not fit the block
      }
    }
    op.fsync = rng() % 100 < 70 || ops.size() + 1 == count;
    InodeState& target = st[op.inode];
    if (op.kind == XattrOp::Kind::kRemove) {
      target.xattrs.erase(op.name);
    } else {
      target.xattrs[op.name] = op.value;
    }
    ops.push_back(op);
  }
  return ops;
}

// states[k]: after ops 1..k.
std::vector<State> model_states(const std::vector<XattrOp>& ops) {
  std::vector<State> states(1, State(3));
  for (const XattrOp& op : ops) {
    State next = states.back();
    InodeState& s = next[op.inode];
    switch (op.kind) {
      case XattrOp::Kind::kCreateFile: s = {true, 0644, {}}; break;
      case XattrOp::Kind::kCreateDir: s = {true, 0755, {}}; break;
      case XattrOp::Kind::kSet:
        s.xattrs[op.name] = op.value;
        if (op.name == kAccessAcl) s.mode = op.mode;
        break;
      case XattrOp::Kind::kRemove: s.xattrs.erase(op.name); break;
    }
    states.push_back(std::move(next));
  }
  return states;
}

Status run_op(FileSystem& fs, std::vector<uint64_t>& inos, const XattrOp& op) {
  const uint64_t root = fs.root();
  switch (op.kind) {
    case XattrOp::Kind::kCreateFile: {
      LUNFS_ASSIGN(Attr a, fs.mknod(root, inode_name(op.inode), S_IFREG | 0644, 0, Cred{}));
      inos[op.inode] = a.ino;
      break;
    }
    case XattrOp::Kind::kCreateDir: {
      LUNFS_ASSIGN(Attr a, fs.mkdir(root, inode_name(op.inode), 0755, Cred{}));
      inos[op.inode] = a.ino;
      break;
    }
    case XattrOp::Kind::kSet: LUNFS_TRY(fs.setxattr(inos[op.inode], op.name, op.value, op.flags)); break;
    case XattrOp::Kind::kRemove: LUNFS_TRY(fs.removexattr(inos[op.inode], op.name)); break;
  }
  return op.fsync ? fs.fsync(inos[op.inode], false) : Status::ok();
}

// What the mounted image shows of inode i (exists = false: there is no such name).
Result<InodeState> observe(FileSystem& fs, uint32_t i) {
  InodeState s;
  auto attr = fs.lookup(fs.root(), inode_name(i));
  if (!attr && attr.err() == ENOENT) return s;
  if (!attr) return attr.status();
  s.exists = true;
  s.mode = attr->mode & 0777;
  auto names = fs.listxattr(attr->ino);
  Status st = names.status();
  if (names) {
    for (const std::string& name : *names) {
      auto value = fs.getxattr(attr->ino, name);
      if (!value) {
        st = error(value.err(), name + " is listed, getxattr: " + value.status().message());
        break;
      }
      s.xattrs[name] = *value;
    }
  }
  (void)fs.forget(attr->ino, 1);
  if (!st) return error(st.err(), std::string(inode_name(i)) + ": " + st.message());
  return s;
}

std::string describe(const InodeState& s) {
  if (!s.exists) return "absent";
  std::string out = "mode " + std::to_string(s.mode) + ", {";
  for (const auto& [name, value] : s.xattrs) out += " " + name + ":" + std::to_string(value.size()) + "B";
  return out + " }";
}

}  // namespace

Scenario xattr_scenario(uint64_t ops) {
  auto shared_ops = std::make_shared<const std::vector<XattrOp>>(generate(ops, 7));
  auto states = std::make_shared<const std::vector<State>>(model_states(*shared_ops));
  Scenario s;
  s.name = "xattrs and ACLs";
  s.run = [shared_ops](RecordingDevice& dev, const ondisk::Superblock& sb) {
    return with_mount(dev, sb, [&](FileSystem& fs) -> Status {
      std::vector<uint64_t> inos(3);
      for (uint64_t k = 1; k <= shared_ops->size(); ++k) {
        const XattrOp& op = (*shared_ops)[k - 1];
        if (auto st = run_op(fs, inos, op); !st) return error(st.err(), "op " + std::to_string(k) + ": " + st.message());
        if (op.fsync) dev.mark(k);
      }
      for (uint64_t ino : inos) LUNFS_TRY(fs.forget(ino, 1));
      return Status::ok();
    });
  };
  s.recover = replay_slot;
  s.verify = [shared_ops, states](BlockDevice& image, const ondisk::Superblock&, uint64_t acked) -> Result<uint64_t> {
    LUNFS_TRY(fsck_clean(image));
    return with_read_only_mount(image, [&](FileSystem& fs) -> Result<uint64_t> {
      State seen(3);
      for (uint32_t i = 0; i < 3; ++i) {
        LUNFS_ASSIGN(seen[i], observe(fs, i));
      }
      uint64_t last = acked + 1;
      while (last < shared_ops->size() && !(*shared_ops)[last - 1].fsync) ++last;
      last = std::min<uint64_t>(last, shared_ops->size());
      auto same = [](const InodeState& a, const InodeState& b) {
        return a.exists == b.exists && (!a.exists || (a.mode == b.mode && a.xattrs == b.xattrs));
      };
      for (uint64_t j = acked; j <= last; ++j) {
        const State& want = (*states)[j];
        if (std::equal(seen.begin(), seen.end(), want.begin(), same)) return j;
      }
      std::string text = "the xattrs match no state from op " + std::to_string(acked) + " (acknowledged) to op " +
                         std::to_string(last) + ":";
      for (uint32_t i = 0; i < 3; ++i) {
        text += std::string(" ") + inode_name(i) + " is " + describe(seen[i]) + ", acknowledged " +
                describe((*states)[acked][i]) + ";";
      }
      return error(EIO, text);
    });
  };
  return s;
}

}  // namespace lunfs::crash

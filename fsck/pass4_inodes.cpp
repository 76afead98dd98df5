// fsck pass 4: every block the bitmaps call an inode: the inode itself, its extent tree
// (recording every block it owns for pass 6), its xattr block, and, for directories, their
// entries (pass4_directories.cpp).
#include "fsck/checker_state.h"

#include <sys/stat.h>

#include <algorithm>

#include "fs/format/extent_format.h"
#include "fs/format/inode_format.h"
#include "fs/format/xattr_format.h"

namespace lunfs::fsck {

using namespace ondisk;

// Walks an extent tree, recording every block it owns. Returns the leaf extents.
bool Checker::walk_extents(uint64_t ino, const ExtentNode& node, uint64_t lo, uint64_t hi,
                           std::vector<Extent>& out, uint64_t& blocks, int expected_depth) {
  const Geometry& g = report_.sb.geometry;
  if (expected_depth >= 0 && node.depth != expected_depth) {
    error("inode " + n(ino) + ": extent node at depth " + n(node.depth) + " where " +
          n(expected_depth) + " was expected");
    return false;
  }
  if (node.depth == 0) {
    for (const Extent& e : node.extents) {
      if (e.logical < lo || e.logical_end() > hi) {
        error("inode " + n(ino) + ": extent at logical block " + n(e.logical) +
              " lies outside the range its index node gives");
        return false;
      }
      if (!out.empty() && out.back().logical_end() > e.logical) {
        error("inode " + n(ino) + ": extents overlap at logical block " + n(e.logical));
        return false;
      }
      out.push_back(e);
      refs_.push_back({e.physical, e.length, ino, "file data"});
      blocks += e.length;
    }
    return true;
  }
  AlignedBuffer one;
  for (size_t i = 0; i < node.children.size(); ++i) {
    const ExtentIndex& c = node.children[i];
    uint64_t child_hi = i + 1 < node.children.size() ? node.children[i + 1].logical : hi;
    if (c.logical < lo) {
      error("inode " + n(ino) + ": index entry below its parent's range");
      return false;
    }
    refs_.push_back({c.child, 1, ino, "extent node"});
    blocks += 1;
    if (!read_one(c.child, one, "inode " + n(ino) + " extent node")) return false;
    auto child = decode_extent_node(one.span(), c.child, report_.sb.csum_seed, ino, g);
    if (!child) {
      error("inode " + n(ino) + ": " + child.status().message());
      return false;
    }
    if (!walk_extents(ino, *child, c.logical, child_hi, out, blocks, node.depth - 1)) return false;
  }
  return true;
}

// Physical block of logical block `lb`, or 0 for a hole.
uint64_t Checker::map_block(const std::vector<Extent>& extents, uint64_t lb) {
  auto it = std::upper_bound(extents.begin(), extents.end(), lb,
                             [](uint64_t v, const Extent& e) { return v < e.logical; });
  if (it == extents.begin()) return 0;
  --it;
  if (lb >= it->logical_end() || (it->flags & kExtentUnwritten)) return 0;
  return it->physical + (lb - it->logical);
}

void Checker::check_inode(uint64_t ino, std::span<const std::byte> block, bool unlinked_state) {
  const Geometry& g = report_.sb.geometry;
  auto decoded = decode_inode(block, ino, report_.sb.csum_seed, g);
  if (!decoded) {
    error(decoded.status().message());
    bad_inodes_.insert({ino, true});
    return;
  }
  const Inode& inode = *decoded;
  ++report_.inodes;
  InodeInfo& info = inodes_[ino];
  info.mode = inode.mode;
  info.nlink = inode.nlink;
  info.parent = inode.parent;
  info.unlinked_state = unlinked_state;
  const uint32_t type = inode.mode & S_IFMT;
  const std::string where = "inode " + n(ino);
  if (unlinked_state && inode.nlink != 0) {
    error(where + " is marked unlinked in the bitmap but has link count " + n(inode.nlink));
  }

  uint64_t blocks = 0;
  std::vector<Extent> extents;
  if (inode.flags & kInodeExtents) {
    auto root = decode_extent_root(inode.content, ino, g);
    if (!root) {
      error(root.status().message());
      info.tree_bad = true;
      if (type == S_IFDIR) info.dir_bad = true;
      return;
    }
    if (!walk_extents(ino, *root, 0, UINT64_MAX, extents, blocks, -1)) {
      info.tree_bad = true;
      if (type == S_IFDIR) info.dir_bad = true;
      return;
    }
  } else if (type == S_IFREG && !(inode.flags & kInodeInlineData) && inode.size != 0) {
    error(where + ": regular file of " + n(inode.size) + " bytes without data layout");
    info.layout_bad = true;
  }
  if ((type == S_IFCHR || type == S_IFBLK || type == S_IFIFO || type == S_IFSOCK) &&
      (inode.flags & (kInodeExtents | kInodeInlineData))) {
    error(where + ": special file with data");
    info.layout_bad = true;
  }
  if (type == S_IFLNK) {
    const size_t before = report_.errors();
    check_symlink(ino, inode, extents);
    if (report_.errors() > before) info.unusable = true;
  }
  if (inode.xattr_block != 0) {
    AlignedBuffer one;
    if (read_one(inode.xattr_block, one, where + " xattrs")) {
      auto x = decode_xattr_block(one.span(), inode.xattr_block, report_.sb.csum_seed, ino);
      if (!x) {
        error(where + ": " + x.status().message());
        info.xattr_bad = true;
      }
    } else {
      info.xattr_bad = true;
    }
    refs_.push_back({inode.xattr_block, 1, ino, "xattr block"});
    blocks += 1;
  }
  if (type == S_IFDIR) {
    ++report_.directories;
    uint64_t count = 0;
    if (inode.flags & kInodeInlineDir) {
      auto entries = decode_dir_entries(inode.content, inode.dir_entries, report_.sb.dir_hash_seed, g,
                                        BlockType::kInode, ino);
      if (!entries) {
        error(entries.status().message());
        info.dir_bad = true;
        salvage_entries(ino, inode.content, false);  // the inode's checksum held
      } else {
        count = entries->size();
        add_entries(ino, *entries);
      }
    } else if (inode.flags & kInodeHashedDir) {
      const size_t before = report_.errors();
      count = check_hashed_dir(ino, inode, extents, blocks);
      if (report_.errors() > before) info.dir_bad = true;
    } else {
      error(where + ": directory that is neither inline nor hashed");
      info.dir_bad = true;
    }
    if (count != inode.dir_entries) {
      error(where + ": says it holds " + n(inode.dir_entries) + " entries, " + n(count) + " were found");
      info.dir_bad = true;
    }
  }
  if (blocks != inode.blocks) {
    error(where + ": block count says " + n(inode.blocks) + ", its extents and metadata use " + n(blocks));
  }
}

// A target is 1..4095 bytes without NUL, inline or in data blocks that map logical blocks
// 0.. of the target and nothing else (the blocks' ownership is pass 6's).
void Checker::check_symlink(uint64_t ino, const Inode& inode, const std::vector<Extent>& extents) {
  const std::string where = "inode " + n(ino) + ": symbolic link";
  if (inode.size == 0 || inode.size > kSymlinkMaxBytes) {
    error(where + " target of " + n(inode.size) + " bytes");
    return;
  }
  std::string target;
  if (inode.flags & kInodeInlineData) {
    target.assign(inode.content.begin(), inode.content.end());
  } else if (inode.flags & kInodeExtents) {
    const uint64_t nblocks = (inode.size + bs() - 1) / bs();
    if (!extents.empty() && extents.back().logical_end() > nblocks) {
      error(where + " maps blocks beyond its " + n(inode.size) + "-byte target");
    }
    AlignedBuffer one;
    for (uint64_t lb = 0; lb < nblocks; ++lb) {
      const uint64_t phys = map_block(extents, lb);
      if (phys == 0) {
        error(where + " target block " + n(lb) + " is not mapped (a hole or unwritten)");
        return;
      }
      if (!read_one(phys, one, where + " target")) return;
      const uint64_t len = std::min<uint64_t>(bs(), inode.size - lb * bs());
      target.append(reinterpret_cast<const char*>(one.data()), len);
    }
  } else {
    error(where + " without a target (neither inline nor in blocks)");
    return;
  }
  if (const size_t nul = target.find('\0'); nul != std::string::npos) {
    error(where + " target holds a NUL byte at offset " + n(nul));
  }
}

void Checker::check_inodes() {
  const Geometry& g = report_.sb.geometry;
  AlignedBuffer run;
  for (uint32_t r = 0; r < rgrps_.size(); ++r) {
    step(r);
    const RgrpInfo& info = rgrps_[r];
    if (!info.bitmaps_ok || info.bits.empty()) continue;
    RgrpLocation loc = g.rgrp(r);
    // Read runs of consecutive inode blocks in one I/O each.
    for (uint32_t j = 0; j < loc.data_blocks;) {
      auto is_inode = [&](uint32_t k) {
        BlockState s = info.state(k);
        return s == BlockState::kDinode || s == BlockState::kUnlinked;
      };
      if (!is_inode(j)) {
        ++j;
        continue;
      }
      uint32_t end = j;
      while (end < loc.data_blocks && end - j < 256 && is_inode(end)) ++end;
      if (auto st = read_blocks(loc.first_data + j, end - j, run); !st) {
        error("resource group " + n(r) + ": cannot read inodes: " + st.to_string());
        j = end;
        continue;
      }
      for (uint32_t k = j; k < end; ++k) {
        check_inode(loc.first_data + k, run.span().subspan(uint64_t{k - j} * bs(), bs()),
                    info.state(k) == BlockState::kUnlinked);
      }
      j = end;
    }
  }
  discover_inodes();
  auto root = inodes_.find(report_.sb.root_inode);
  if (root == inodes_.end()) {
    if (!bad_inodes_.count(report_.sb.root_inode)) {
      error("the root directory (inode " + n(report_.sb.root_inode) + ") is not marked as an inode in its bitmap");
    }
  } else if ((root->second.mode & S_IFMT) != S_IFDIR) {
    error("the root inode " + n(report_.sb.root_inode) + " is not a directory");
  } else if (root->second.parent != report_.sb.root_inode) {
    error("the root directory's parent is " + n(root->second.parent) + ", not itself");
  }
}

// Inodes in resource groups whose bitmaps cannot be read are found the other way round:
// through the directory entries that name them (the root first), so that their files are
// checked and the repair can mark them in the rebuilt bitmaps; then by a scan of those
// groups for blocks that are valid inodes of this file system at their own address with a
// link count (a freed inode keeps its block but has none), which the repair reconnects in
// lost+found. An entry index loop, because every directory found adds entries.
void Checker::discover_inodes() {
  const Geometry& g = report_.sb.geometry;
  auto unmapped = [&](uint64_t block) {
    const int64_t r = g.rgrp_of(block);
    return r >= 0 && !rgrps_[static_cast<size_t>(r)].bitmaps_ok;
  };
  AlignedBuffer one;
  auto visit = [&](uint64_t ino) {
    if (inodes_.count(ino) || bad_inodes_.count(ino) || !unmapped(ino)) return;
    if (auto st = read_blocks(ino, 1, one); !st) {
      error("inode " + n(ino) + ": cannot read: " + st.to_string());
      bad_inodes_.insert({ino, true});
      return;
    }
    if (peek_header(one.span()).type != BlockType::kInode) return;  // reported as "not an inode"
    check_inode(ino, one.span(), false);
    if (auto it = inodes_.find(ino); it != inodes_.end()) it->second.discovered = true;
  };
  visit(report_.sb.root_inode);
  size_t next = 0;
  for (; next < entries_.size(); ++next) visit(entries_[next].target);
  AlignedBuffer run;
  for (uint32_t r = 0; r < rgrps_.size(); ++r) {
    if (rgrps_[r].bitmaps_ok) continue;
    const RgrpLocation loc = g.rgrp(r);
    constexpr uint32_t kRun = 256;
    for (uint32_t j = 0; j < loc.data_blocks; j += kRun) {
      const uint32_t count = std::min(kRun, loc.data_blocks - j);
      if (!read_blocks(loc.first_data + j, count, run)) continue;
      for (uint32_t k = 0; k < count; ++k) {
        const uint64_t b = loc.first_data + j + k;
        auto block = run.span().subspan(uint64_t{k} * bs(), bs());
        const BlockHeader h = peek_header(block);
        if (h.magic != kMagic || h.type != BlockType::kInode || h.blocknr != b) continue;
        if (inodes_.count(b) || bad_inodes_.count(b)) continue;
        auto inode = decode_inode(block, b, report_.sb.csum_seed, g);
        if (!inode || inode->nlink == 0) continue;
        check_inode(b, block, false);
        if (auto it = inodes_.find(b); it != inodes_.end()) it->second.discovered = it->second.scanned = true;
      }
    }
  }
  for (; next < entries_.size(); ++next) visit(entries_[next].target);
}

}  // namespace lunfs::fsck

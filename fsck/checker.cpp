// fsck.lunfs checking passes, in order: superblocks, node slots, resource groups and their
// bitmaps, inodes (extent trees, xattrs, directories), link counts and reachability, block
// ownership against the bitmaps, and statfs totals.
#include "fsck/checker.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "fs/device/aligned_buffer.h"
#include "fs/format/dir_format.h"
#include "fs/device/parallel_io.h"
#include "fs/format/extent_format.h"
#include "fs/format/inode_format.h"
#include "fs/format/rgrp_format.h"
#include "fs/format/signature.h"
#include "fs/format/slot_format.h"
#include "fs/format/xattr_format.h"
#include "journal/check.h"

namespace lunfs {

using namespace ondisk;

size_t FsckReport::errors() const {
  return std::count_if(findings.begin(), findings.end(),
                       [](const FsckFinding& f) { return f.kind == FsckFinding::Kind::kError; });
}
size_t FsckReport::warnings() const { return findings.size() - errors(); }
bool FsckReport::mentions(const std::string& needle) const {
  return std::any_of(findings.begin(), findings.end(),
                     [&](const FsckFinding& f) { return f.text.find(needle) != std::string::npos; });
}

namespace {

std::string n(uint64_t v) { return std::to_string(v); }


Status not_lunfs(BlockDevice& dev, const std::string& why) {
  auto sigs = detect_signatures(dev);
  if (sigs && !sigs->empty()) {
    return lunfs::error(EMEDIUMTYPE, "not a lunfs device: it holds a " + sigs->front().what);
  }
  return lunfs::error(EMEDIUMTYPE, "not a lunfs device: " + why);
}

struct RgrpInfo {
  bool header_ok = false;
  bool bitmaps_ok = false;  // bitmaps read and valid (or uninitialised)
  RgrpHeader header;
  std::vector<uint8_t> bits;  // concatenated bitmap bits, 2 per data block
  BlockState state(uint32_t i) const { return static_cast<BlockState>((bits[i / 4] >> (i % 4 * 2)) & 3); }
};

struct InodeInfo {
  uint32_t mode = 0;
  uint32_t nlink = 0;
  uint64_t parent = 0;
  bool unlinked_state = false;
  uint32_t entry_refs = 0;  // directory entries naming this inode
  uint32_t subdirs = 0;     // for directories: entries that are directories
  uint64_t named_from = 0;  // a directory that names it
};

struct EntryRef {
  uint64_t dir;
  uint64_t target;
  uint8_t type;
  std::string name;
};

struct BlockRef {
  uint64_t start;
  uint64_t length;
  uint64_t owner;  // inode
  const char* what;
};

class Checker {
 public:
  Checker(BlockDevice& dev, const FsckOptions& options) : dev_(dev), options_(options) {}

  Result<FsckReport> run() {
    LUNFS_TRY(load_superblock());
    const Geometry& g = report_.sb.geometry;
    progress("Phase 1: superblocks (" + n(g.block_count) + " blocks of " + n(g.block_size) + " bytes)");
    if (dev_.size_bytes() < g.block_count * g.block_size) {
      error("the device (" + n(dev_.size_bytes()) + " bytes) is smaller than the file system (" +
            n(g.block_count * g.block_size) + " bytes): was the LUN shrunk?");
      return report_;  // nothing beyond the device's end can be read
    }
    if (have_primary_) compare_backup();
    progress("Phase 2: node slots (" + n(g.journal_count) + " journals)");
    check_slots();
    progress("Phase 3: resource groups (" + n(g.rgrp_count) + ")");
    check_rgrps();
    progress("Phase 4: inodes, extent trees, directories, xattrs");
    check_inodes();
    progress("Phase 5: link counts and reachability");
    check_links();
    progress("Phase 6: block ownership against the bitmaps");
    check_ownership();
    progress("Phase 7: statfs totals");
    check_statfs();
    return report_;
  }

 private:
  void error(std::string text) {  // a finding; lunfs::error makes a Status
    report_.findings.push_back({FsckFinding::Kind::kError, std::move(text)}); }
  void warning(std::string text) { report_.findings.push_back({FsckFinding::Kind::kWarning, std::move(text)}); }
  void progress(const std::string& text) {
    if (options_.verbose) *options_.verbose << text << "\n";
  }
  uint32_t bs() const { return report_.sb.geometry.block_size; }

  Status read_blocks(uint64_t block, uint64_t count, AlignedBuffer& buf) {
    if (buf.size() != count * bs()) buf = AlignedBuffer(count * bs());
    return dev_.read(block * bs(), buf.span());
  }

  // Reads one block for a structure; a read error becomes a finding and returns false.
  bool read_one(uint64_t block, AlignedBuffer& buf, const std::string& what) {
    if (auto st = read_blocks(block, 1, buf); !st) {
      error(what + ": cannot read block " + n(block) + ": " + st.to_string());
      return false;
    }
    return true;
  }

  Status load_superblock() {
    LUNFS_ASSIGN(LocatedSuperblock found, locate_superblock(dev_));
    report_.sb = found.sb;
    have_primary_ = found.primary_damage.empty();
    if (!have_primary_) {
      error("primary superblock damaged (" + found.primary_damage + "); the backup superblock at block " +
            n(found.backup_block) + " is intact and was used");
    }
    return Status::ok();
  }

  void compare_backup() {
    const Geometry& g = report_.sb.geometry;
    AlignedBuffer one;
    if (!read_one(g.backup_sb_block, one, "backup superblock")) return;
    auto backup = decode_superblock(one.span(), g.backup_sb_block);
    if (!backup) {
      error("backup superblock: " + backup.status().message());
    } else if (!(*backup == report_.sb)) {
      error("backup superblock at block " + n(g.backup_sb_block) + " differs from the primary");
    }
  }

  void check_slots() {
    const Geometry& g = report_.sb.geometry;
    const uint64_t seed = report_.sb.csum_seed;
    const uint32_t slots = g.journal_count;
    AlignedBuffer area;
    if (auto st = read_blocks(g.slot_header_start, 3 * uint64_t{slots} + 1, area); !st) {
      error("node slot area: cannot read: " + st.to_string());
      statfs_valid_ = false;
      return;
    }
    auto block = [&](uint64_t i) { return std::span<const std::byte>(area.span().subspan(i * bs(), bs())); };
    for (uint32_t s = 0; s < slots; ++s) {
      auto header = decode_slot_header(block(s), g.slot_header(s), seed, g);
      if (!header) error("slot " + n(s) + ": " + header.status().message());
      if (header) {  // dirty (needs replay) or damaged journals, in words
        for (const auto& f : journal::check_journal(dev_, report_.sb, s).findings) {
          f.error ? error("slot " + n(s) + ": " + f.text) : warning("slot " + n(s) + ": " + f.text);
        }
      }
      auto hb = decode_heartbeat(block(slots + s), g.heartbeat(s), seed, g);
      if (!hb) {
        error("slot " + n(s) + ": " + hb.status().message());
      } else if (hb->state == HeartbeatState::kLive) {
        warning("slot " + n(s) + ": heartbeat says node " + n(hb->node) +
                " has the file system mounted (or died with it mounted); a check of a mounted "
                "file system can report changes in flight as errors");
      }
      auto delta = decode_statfs(block(2 * slots + s), g.statfs_delta(s), seed, g);
      if (!delta) {
        error("slot " + n(s) + ": " + delta.status().message());
        statfs_valid_ = false;
      } else {
        statfs_free_ += delta->free_blocks;
        statfs_dinodes_ += delta->dinodes;
      }
    }
    auto master = decode_statfs(block(3 * uint64_t{slots}), g.statfs_block, seed, g);
    if (!master) {
      error("master statfs: " + master.status().message());
      statfs_valid_ = false;
    } else {
      statfs_free_ += master->free_blocks;
      statfs_dinodes_ += master->dinodes;
    }
  }

  void check_rgrps() {
    const Geometry& g = report_.sb.geometry;
    const uint64_t seed = report_.sb.csum_seed;
    rgrps_.resize(g.rgrp_count);
    // Headers are read in batches, many I/Os in flight; 1024 headers of 64 KiB at most
    // bound the memory.
    constexpr uint32_t kBatch = 1024;
    AlignedBuffer headers(uint64_t{std::min(kBatch, g.rgrp_count)} * bs()), bitmaps;
    std::vector<Status> read_status(kBatch);
    for (uint32_t i = 0; i < g.rgrp_count; ++i) {
      const uint32_t slot = i % kBatch;
      if (slot == 0) {
        uint32_t batch = std::min(kBatch, g.rgrp_count - i);
        (void)parallel_for(batch, [&](size_t k) {
          read_status[k] = dev_.read(g.rgrp(i + static_cast<uint32_t>(k)).header * bs(),
                                     headers.span().subspan(k * bs(), bs()));
          return Status::ok();
        });
      }
      RgrpLocation loc = g.rgrp(i);
      RgrpInfo& info = rgrps_[i];
      const std::string where = "resource group " + n(i);
      if (!read_status[slot]) {
        error(where + ": cannot read block " + n(loc.header) + ": " + read_status[slot].to_string());
        continue;
      }
      auto header = decode_rgrp_header(headers.span().subspan(uint64_t{slot} * bs(), bs()), loc.header, seed, loc);
      if (!header) {
        error(where + ": " + header.status().message() + "; its blocks cannot be checked");
        continue;
      }
      info.header_ok = true;
      info.header = *header;
      if (header->flags & kRgrpBitmapUninit) {
        info.bitmaps_ok = true;
        total_free_ += header->free_blocks;
        continue;
      }
      if (auto st = read_blocks(loc.header + 1, loc.bitmap_blocks, bitmaps); !st) {
        error(where + ": cannot read its bitmaps: " + st.to_string());
        continue;
      }
      const uint32_t per = Geometry::blocks_per_bitmap(bs());
      info.bits.assign((uint64_t{loc.bitmap_blocks} * per) / 4, 0);
      bool ok = true;
      for (uint32_t b = 0; b < loc.bitmap_blocks; ++b) {
        uint32_t covered = std::min<uint32_t>(per, loc.data_blocks - b * per);
        auto bm = decode_bitmap(bitmaps.span().subspan(uint64_t{b} * bs(), bs()), loc.header + 1 + b,
                                seed, loc, b, covered);
        if (!bm) {
          error(where + ": " + bm.status().message());
          ok = false;
          continue;
        }
        std::copy(bm->bits.begin(), bm->bits.end(), info.bits.begin() + uint64_t{b} * (per / 4));
      }
      if (!ok) continue;
      info.bitmaps_ok = true;
      uint64_t counts[4] = {};
      for (uint32_t j = 0; j < loc.data_blocks; ++j) ++counts[static_cast<int>(info.state(j))];
      struct {
        const char* name;
        uint64_t header;
        uint64_t bitmap;
      } checks[] = {{"free", header->free_blocks, counts[0]},
                    {"inode", header->dinodes, counts[3]},
                    {"unlinked", header->unlinked, counts[2]}};
      for (const auto& c : checks) {
        if (c.header != c.bitmap) {
          error(where + ": header counts " + n(c.header) + " " + c.name + " blocks, the bitmap " + n(c.bitmap));
        }
      }
      total_free_ += counts[0];
    }
  }

  // Walks an extent tree, recording every block it owns. Returns the leaf extents.
  bool walk_extents(uint64_t ino, const ExtentNode& node, uint64_t lo, uint64_t hi,
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
  static uint64_t map_block(const std::vector<Extent>& extents, uint64_t lb) {
    auto it = std::upper_bound(extents.begin(), extents.end(), lb,
                               [](uint64_t v, const Extent& e) { return v < e.logical; });
    if (it == extents.begin()) return 0;
    --it;
    if (lb >= it->logical_end() || (it->flags & kExtentUnwritten)) return 0;
    return it->physical + (lb - it->logical);
  }

  void add_entries(uint64_t dir, const std::vector<DirEntry>& entries) {
    for (const auto& e : entries) entries_.push_back({dir, e.inode, e.type, e.name});
  }

  // Hashed directory: table blocks through the extent map, then leaves and their chains.
  uint64_t check_hashed_dir(uint64_t ino, const Inode& inode, const std::vector<Extent>& extents,
                            uint64_t& blocks) {
    const Geometry& g = report_.sb.geometry;
    const std::string where = "directory " + n(ino);
    const uint64_t table_size = uint64_t{1} << inode.dir_depth;
    const uint32_t per = dir_hash_pointers_per_block(bs());
    const uint64_t table_blocks = (table_size + per - 1) / per;
    std::vector<uint64_t> table;
    table.reserve(table_size);
    AlignedBuffer one;
    for (uint64_t t = 0; t < table_blocks; ++t) {
      uint64_t phys = map_block(extents, t);
      if (phys == 0) {
        error(where + ": hash table block " + n(t) + " is missing (hole)");
        return 0;
      }
      if (!read_one(phys, one, where + " hash table")) return 0;
      auto pointers = static_cast<uint32_t>(std::min<uint64_t>(per, table_size - t * per));
      auto hb = decode_dir_hash(one.span(), phys, report_.sb.csum_seed, ino, static_cast<uint32_t>(t), pointers, g);
      if (!hb) {
        error(where + ": " + hb.status().message());
        return 0;
      }
      table.insert(table.end(), hb->leaves.begin(), hb->leaves.end());
    }
    uint64_t count = 0;
    std::unordered_set<uint64_t> leaves_seen;
    for (uint64_t i = 0; i < table_size;) {
      uint64_t leaf_block = table[i];
      if (!read_one(leaf_block, one, where + " leaf")) return count;
      auto leaf = decode_dir_leaf(one.span(), leaf_block, report_.sb.csum_seed, report_.sb.dir_hash_seed, ino, g);
      if (!leaf) {
        error(where + ": " + leaf.status().message());
        return count;
      }
      if (leaf->depth > inode.dir_depth) {
        error(where + ": leaf " + n(leaf_block) + " is deeper than the directory's hash table");
        return count;
      }
      uint64_t span = uint64_t{1} << (inode.dir_depth - leaf->depth);
      uint64_t expected_prefix = leaf->depth == 0 ? 0 : i >> (inode.dir_depth - leaf->depth);
      if (i % span != 0 || leaf->hash_prefix != expected_prefix) {
        error(where + ": leaf " + n(leaf_block) + " sits at hash-table slot " + n(i) +
              " but covers hash prefix " + n(leaf->hash_prefix) + " of depth " + n(leaf->depth));
        return count;
      }
      for (uint64_t k = i; k < i + span && k < table_size; ++k) {
        if (table[k] != leaf_block) {
          error(where + ": hash-table slots " + n(i) + ".." + n(i + span - 1) + " should all point at leaf " + n(leaf_block));
          return count;
        }
      }
      uint64_t chain_block = leaf_block;
      DirLeaf current = *leaf;
      for (;;) {
        refs_.push_back({chain_block, 1, ino, "directory leaf"});
        if (!leaves_seen.insert(chain_block).second) break;  // a loop: reported as a double use
        blocks += 1;
        count += current.entries.size();
        add_entries(ino, current.entries);
        if (current.next == 0) break;
        chain_block = current.next;
        if (!read_one(chain_block, one, where + " leaf")) break;
        auto next = decode_dir_leaf(one.span(), chain_block, report_.sb.csum_seed, report_.sb.dir_hash_seed, ino, g);
        if (!next) {
          error(where + ": " + next.status().message());
          break;
        }
        if (next->depth != leaf->depth || next->hash_prefix != leaf->hash_prefix) {
          error(where + ": chained leaf " + n(chain_block) + " covers a different hash range");
          break;
        }
        // A chain is one run sorted by (hash, name) — readdir cookies count equal hashes
        // across it — and the core never keeps an empty leaf in a chain.
        if (next->entries.empty()) error(where + ": chained leaf " + n(chain_block) + " is empty");
        if (!next->entries.empty() && !current.entries.empty() &&
            std::tie(current.entries.back().hash, current.entries.back().name) >=
                std::tie(next->entries.front().hash, next->entries.front().name)) {
          error(where + ": chained leaf " + n(chain_block) + " does not continue its chain's order");
        }
        current = std::move(*next);
      }
      i += span;
    }
    return count;
  }

  void check_inode(uint64_t ino, std::span<const std::byte> block, bool unlinked_state) {
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
        return;
      }
      if (!walk_extents(ino, *root, 0, UINT64_MAX, extents, blocks, -1)) return;
    } else if (type == S_IFREG && !(inode.flags & kInodeInlineData) && inode.size != 0) {
      error(where + ": regular file of " + n(inode.size) + " bytes without data layout");
    }
    if ((type == S_IFCHR || type == S_IFBLK || type == S_IFIFO || type == S_IFSOCK) &&
        (inode.flags & (kInodeExtents | kInodeInlineData))) {
      error(where + ": special file with data");
    }
    if (type == S_IFLNK && (inode.size == 0 || inode.size > 4096)) {
      error(where + ": symbolic link target of " + n(inode.size) + " bytes");
    }
    if (inode.xattr_block != 0) {
      AlignedBuffer one;
      if (read_one(inode.xattr_block, one, where + " xattrs")) {
        auto x = decode_xattr_block(one.span(), inode.xattr_block, report_.sb.csum_seed, ino);
        if (!x) error(where + ": " + x.status().message());
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
        } else {
          count = entries->size();
          add_entries(ino, *entries);
        }
      } else if (inode.flags & kInodeHashedDir) {
        count = check_hashed_dir(ino, inode, extents, blocks);
      } else {
        error(where + ": directory that is neither inline nor hashed");
      }
      if (count != inode.dir_entries) {
        error(where + ": says it holds " + n(inode.dir_entries) + " entries, " + n(count) + " were found");
      }
    }
    if (blocks != inode.blocks) {
      error(where + ": block count says " + n(inode.blocks) + ", its extents and metadata use " + n(blocks));
    }
  }

  void check_inodes() {
    const Geometry& g = report_.sb.geometry;
    AlignedBuffer run;
    for (uint32_t r = 0; r < rgrps_.size(); ++r) {
      const RgrpInfo& info = rgrps_[r];
      if (!info.header_ok || !info.bitmaps_ok || info.bits.empty()) continue;
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

  void check_links() {
    for (const EntryRef& e : entries_) {
      const std::string where = "directory " + n(e.dir) + " entry '" + e.name + "'";
      auto it = inodes_.find(e.target);
      if (it == inodes_.end()) {
        if (bad_inodes_.count(e.target)) continue;  // already reported as damaged
        error(where + " points at block " + n(e.target) + ", which is not an inode");
        continue;
      }
      InodeInfo& target = it->second;
      if (target.unlinked_state) error(where + " names inode " + n(e.target) + ", which is marked unlinked");
      if (dirent_type(target.mode) != e.type) {
        error(where + ": entry type " + n(e.type) + " differs from inode " + n(e.target) + "'s file type");
      }
      ++target.entry_refs;
      target.named_from = e.dir;
      if ((target.mode & S_IFMT) == S_IFDIR) {
        if (e.target == report_.sb.root_inode) error(where + " names the root directory");
        if (target.parent != e.dir) {
          error(where + ": directory " + n(e.target) + " says its parent is " + n(target.parent));
        }
        if (target.entry_refs > 1) error("directory " + n(e.target) + " is named by more than one entry");
        ++inodes_[e.dir].subdirs;
      }
    }
    for (const auto& [ino, info] : inodes_) {
      bool is_dir = (info.mode & S_IFMT) == S_IFDIR;
      bool is_root = ino == report_.sb.root_inode;
      if (info.unlinked_state) {
        warning("inode " + n(ino) + " was unlinked while open and is not freed yet (the next mount frees it)");
        continue;
      }
      if (!is_root && info.entry_refs == 0) {
        error("inode " + n(ino) + " is in no directory (lost file)");
        continue;
      }
      uint64_t expected = is_dir ? 2 + info.subdirs : info.entry_refs;
      if (info.nlink != expected) {
        error("inode " + n(ino) + ": link count " + n(info.nlink) + ", but " + n(expected) +
              (is_dir ? " expected from its subdirectories" : " directory entries name it"));
      }
    }
    // A directory cycle detached from the root has every directory named exactly once,
    // so follow parent pointers up from each directory.
    for (const auto& [ino, info] : inodes_) {
      if ((info.mode & S_IFMT) != S_IFDIR || info.unlinked_state) continue;
      uint64_t cur = ino;
      size_t steps = 0;
      while (cur != report_.sb.root_inode && steps++ <= inodes_.size()) {
        auto it = inodes_.find(cur);
        if (it == inodes_.end()) break;
        cur = it->second.parent;
      }
      if (cur != report_.sb.root_inode && steps > inodes_.size()) {
        error("directory " + n(ino) + " is in a loop of directories detached from the root");
      }
    }
  }

  void check_ownership() {
    const Geometry& g = report_.sb.geometry;
    std::sort(refs_.begin(), refs_.end(), [](const BlockRef& a, const BlockRef& b) { return a.start < b.start; });
    uint64_t prev_end = 0;
    const BlockRef* prev = nullptr;
    for (const BlockRef& r : refs_) {
      if (prev && r.start < prev_end) {
        error("block " + n(r.start) + " is used twice: as " + prev->what + " of inode " + n(prev->owner) +
              " and as " + r.what + " of inode " + n(r.owner));
      }
      if (r.start + r.length > prev_end) {
        prev_end = r.start + r.length;
        prev = &r;
      }
    }
    // Every referenced block must be "used" in its bitmap; every "used" block referenced.
    size_t next_ref = 0;
    for (uint32_t ri = 0; ri < rgrps_.size(); ++ri) {
      const RgrpInfo& info = rgrps_[ri];
      RgrpLocation loc = g.rgrp(ri);
      uint64_t lo = loc.first_data, hi = loc.first_data + loc.data_blocks;
      while (next_ref < refs_.size() && refs_[next_ref].start < lo) ++next_ref;
      if (!info.header_ok || !info.bitmaps_ok) {
        while (next_ref < refs_.size() && refs_[next_ref].start < hi) ++next_ref;
        continue;
      }
      std::vector<bool> referenced(info.bits.empty() ? 0 : loc.data_blocks);
      for (; next_ref < refs_.size() && refs_[next_ref].start < hi; ++next_ref) {
        const BlockRef& r = refs_[next_ref];
        if (info.bits.empty()) {
          error("inode " + n(r.owner) + ": " + r.what + " at block " + n(r.start) +
                " lies in resource group " + n(ri) + ", whose bitmap says everything is free");
          continue;
        }
        for (uint64_t b = r.start; b < r.start + r.length && b < hi; ++b) {
          uint32_t j = static_cast<uint32_t>(b - lo);
          referenced[j] = true;
          if (info.state(j) != BlockState::kUsed) {
            error("inode " + n(r.owner) + ": " + r.what + " block " + n(b) + " is marked " +
                  block_state_name(info.state(j)) + " in the bitmap");
            break;
          }
        }
      }
      if (info.bits.empty()) continue;
      uint64_t leaked = 0, first_leak = 0;
      for (uint32_t j = 0; j < loc.data_blocks; ++j) {
        BlockState s = info.state(j);
        if (s != BlockState::kFree) ++report_.used_blocks;
        if (s == BlockState::kUsed && !referenced[j]) {
          if (leaked++ == 0) first_leak = lo + j;
        }
      }
      if (leaked) {
        error("resource group " + n(ri) + ": " + n(leaked) + " block(s) marked used belong to no file (first: block " +
              n(first_leak) + ")");
      }
    }
  }

  void check_statfs() {
    if (!statfs_valid_) return;
    bool all_rgrps = std::all_of(rgrps_.begin(), rgrps_.end(), [](const RgrpInfo& r) { return r.header_ok && r.bitmaps_ok; });
    if (!all_rgrps) return;
    uint64_t dinodes = 0;
    for (const auto& r : rgrps_) dinodes += r.header.dinodes + r.header.unlinked;
    if (statfs_free_ != static_cast<int64_t>(total_free_) || statfs_dinodes_ != static_cast<int64_t>(dinodes)) {
      error("statfs: master plus slot deltas say " + std::to_string(statfs_free_) + " free blocks and " +
            std::to_string(statfs_dinodes_) + " inodes; the resource groups hold " + n(total_free_) +
            " free blocks and " + n(dinodes) + " inodes");
    }
  }

  BlockDevice& dev_;
  const FsckOptions& options_;
  FsckReport report_;
  std::vector<RgrpInfo> rgrps_;
  std::unordered_map<uint64_t, InodeInfo> inodes_;
  std::unordered_map<uint64_t, bool> bad_inodes_;
  std::vector<EntryRef> entries_;
  std::vector<BlockRef> refs_;
  int64_t statfs_free_ = 0;
  int64_t statfs_dinodes_ = 0;
  bool statfs_valid_ = true;
  bool have_primary_ = false;
  uint64_t total_free_ = 0;
};

}  // namespace

Result<LocatedSuperblock> locate_superblock(BlockDevice& dev) {
  const uint64_t off = kSuperblockOffset;
  if (dev.size_bytes() < off + kMinBlockSize) return not_lunfs(dev, "the device is too small to hold lunfs");
  uint64_t len = std::min<uint64_t>(kMaxBlockSize, dev.size_bytes() - off);
  len -= len % dev.io_alignment();
  AlignedBuffer buf(len);
  LUNFS_TRY(dev.read(off, buf.span()));
  uint32_t claimed_bs = get<uint32_t>(buf.span(), 36);
  uint64_t primary_block = claimed_bs ? off / claimed_bs : 0;
  auto primary = decode_superblock(buf.span(), primary_block);
  if (primary) {
    LUNFS_TRY(check_features(*primary, false));
    return LocatedSuperblock{*primary, "", 0};
  }
  // Primary damaged: look for a backup at the end of the device, for every block size.
  for (uint32_t b = kMinBlockSize; b <= kMaxBlockSize; b *= 2) {
    if (b % dev.io_alignment() != 0 || dev.size_bytes() / b < 2) continue;
    uint64_t backup_block = dev.size_bytes() / b - 1;
    AlignedBuffer one(b);
    if (!dev.read(backup_block * b, one.span())) continue;
    auto backup = decode_superblock(one.span(), backup_block);
    if (backup && backup->geometry.block_size == b) {
      LUNFS_TRY(check_features(*backup, false));
      return LocatedSuperblock{*backup, primary.status().message(), backup_block};
    }
  }
  if (get<uint32_t>(buf.span(), 0) == kMagic) {
    return lunfs::error(EUCLEAN, "primary superblock damaged (" + primary.status().message() +
                                     ") and no valid backup superblock at the end of the device");
  }
  return not_lunfs(dev, "no lunfs superblock at byte 65536");
}

Result<FsckReport> check_filesystem(BlockDevice& dev, const FsckOptions& options) {
  return Checker(dev, options).run();
}

}  // namespace lunfs

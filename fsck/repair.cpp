// The repair planner and its driver. The planner never patches a finding in place: it
// decides what survives (inodes that decode, extents and entries that are valid and not
// claimed twice, the directory tree from the root plus orphans reconnected in lost+found)
// and derives everything else from that, as gfs2-utils' and e2fsck's passes do: link
// counts and parents from the entries, block counts from the extents, bitmaps and resource
// group counts from what the kept inodes use, statfs from the bitmaps. One rule serves
// every finding; the driver checks the result again, and repairs what that uncovers.
#include "fsck/repair.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "fs/format/slot_format.h"
#include "fsck/checker_state.h"
#include "fsck/journal_recovery.h"
#include "journal/area.h"
#include "journal/journal.h"
#include "journal/log_format.h"

namespace lunfs::fsck {

using namespace ondisk;

namespace {

// Writes go to the journal in this order, so that a repair split over several
// transactions only ever adds references to blocks already written.
enum Phase { kNewBlocks = 0, kInodes = 1, kBitmaps = 2, kTotals = 3 };

constexpr const char* kLostFound = "lost+found";

Timespec now_timespec() {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch()).count();
  return {ns / 1000000000, static_cast<uint32_t>(ns % 1000000000)};
}

std::string ranges_text(const std::vector<std::pair<uint64_t, uint64_t>>& lost) {
  std::string s;
  size_t shown = 0;
  for (const auto& [first, count] : lost) {
    if (shown++ == 4) return s + ", ...";
    s += (s.empty() ? "" : ", ") + n(first) + (count > (uint64_t{1} << 40) ? ".. (to the end)" : ".." + n(first + count - 1));
  }
  return s;
}

}  // namespace

struct RepairPlan {
  std::map<uint64_t, std::pair<Phase, std::shared_ptr<AlignedBuffer>>> writes;
  std::vector<RepairAction> actions;
};

class Repairer {
 public:
  explicit Repairer(Checker& c) : c_(c), sb_(c.report_.sb), g_(sb_.geometry), bs_(g_.block_size) {}

  RepairPlan plan() {
    superblocks();
    slots();
    names_index();
    keep_inodes();
    for (uint64_t ino : kept_) compute_refs(ino);
    resolve_double_use();
    rebuild_tree();
    write_directories();
    write_inodes();
    bitmaps();
    statfs();
    return std::move(plan_);
  }

 private:
  // ---- helpers ----
  void act(bool safe, std::string text) { plan_.actions.push_back({safe, std::move(text)}); }
  std::shared_ptr<AlignedBuffer> fresh() {
    auto b = std::make_shared<AlignedBuffer>(bs_);
    std::fill(b->span().begin(), b->span().end(), std::byte{0});
    return b;
  }
  void put(Phase phase, uint64_t block, std::shared_ptr<AlignedBuffer> data) { plan_.writes[block] = {phase, std::move(data)}; }
  bool read(uint64_t block, AlignedBuffer& buf) {
    if (buf.size() != bs_) buf = AlignedBuffer(bs_);
    return static_cast<bool>(c_.dev_.read(block * bs_, buf.span()));
  }
  uint64_t old_sequence(uint64_t block) {
    AlignedBuffer one;
    return read(block, one) ? peek_header(one.span()).sequence : 0;
  }
  bool in_data(uint64_t start, uint64_t length) const {
    if (length == 0) return false;
    const int64_t r = g_.rgrp_of(start);
    return r >= 0 && r == g_.rgrp_of(start + length - 1);
  }
  bool is_dir(uint64_t ino) const { return (inodes_.at(ino).mode & S_IFMT) == S_IFDIR; }

  // Where an inode was, from the entries as found (for reports of what was lost).
  void names_index() {
    for (const EntryRef& e : c_.entries_) name_of_.try_emplace(e.target, e.dir, e.name);
  }
  std::string path(uint64_t ino) const {
    std::string p;
    uint64_t cur = ino;
    for (int guard = 0; cur != sb_.root_inode; ++guard) {
      auto it = name_of_.find(cur);
      if (it == name_of_.end() || guard > 256) return "inode " + n(ino) + (p.empty() ? "" : " (…" + p + ")");
      p = "/" + it->second.second + p;
      cur = it->second.first;
    }
    return (p.empty() ? "/" : p) + " (inode " + n(ino) + ")";
  }

  // ---- superblocks and slots ----
  void superblocks() {
    if (!c_.have_primary_) {
      auto b = fresh();
      encode_superblock(sb_, b->span(), g_.sb_block);
      put(kTotals, g_.sb_block, b);
      act(true, "primary superblock restored from the backup");
    } else if (c_.backup_bad_) {
      auto b = fresh();
      encode_superblock(sb_, b->span(), g_.backup_sb_block);
      put(kTotals, g_.backup_sb_block, b);
      act(true, "backup superblock rewritten from the primary");
    }
  }

  // A journal that cannot be replayed (damaged log, or a slot header that does not decode)
  // is reset: the tail moves past every record it holds, so none of them is replayed.
  void slots() {
    for (uint32_t s = 0; s < g_.journal_count; ++s) {
      if (s < c_.heartbeat_bad_.size() && c_.heartbeat_bad_[s]) {
        auto b = fresh();
        Heartbeat hb;
        hb.slot = s;
        encode_heartbeat(hb, b->span(), g_.heartbeat(s), sb_.csum_seed);
        put(kTotals, g_.heartbeat(s), b);
        act(true, "slot " + n(s) + ": heartbeat block rewritten (not mounted)");
      }
      const bool header_bad = s < c_.slot_header_bad_.size() && c_.slot_header_bad_[s];
      const bool journal_bad = s < c_.journal_bad_.size() && c_.journal_bad_[s];
      if (!header_bad && !journal_bad) continue;
      SlotHeader header;
      header.slot = s;
      AlignedBuffer one;
      if (read(g_.slot_header(s), one)) {
        if (auto old = decode_slot_header(one.span(), g_.slot_header(s), sb_.csum_seed, g_)) header = *old;
      }
      header.flags = 0;
      header.tail_block = 0;
      header.tail_sequence = std::max(header.tail_sequence, newest_record(s)) + 1;
      auto b = fresh();
      encode_slot_header(header, b->span(), g_.slot_header(s), sb_.csum_seed);
      put(kTotals, g_.slot_header(s), b);
      act(false, "slot " + n(s) + ": journal reset (slot header rewritten, tail at sequence " +
                     n(header.tail_sequence) + "); whatever it held that was not written home is lost");
    }
  }
  uint64_t newest_record(uint32_t slot) {
    const auto area = journal::JournalArea::of(sb_, slot);
    uint64_t newest = 0;
    AlignedBuffer one;
    for (uint32_t p = 0; p < area.blocks; ++p) {
      if (!read(area.absolute(p), one)) continue;
      auto r = journal::parse_record(one.span(), area.id, area.absolute(p), area.device_blocks);
      if (r.kind == journal::Record::Kind::kDescriptor || r.kind == journal::Record::Kind::kRevoke ||
          r.kind == journal::Record::Kind::kCommit || r.kind == journal::Record::Kind::kDamaged) {
        newest = std::max(newest, r.sequence);
      }
    }
    return std::min<uint64_t>(newest, UINT64_MAX - 1);  // a damaged record's sequence may be anything
  }

  // ---- which inodes survive ----
  void keep_inodes() {
    std::map<uint64_t, bool> bad(c_.bad_inodes_.begin(), c_.bad_inodes_.end());
    for (const auto& [ino, _] : bad) {
      act(false, path(ino) + " is damaged beyond repair: removed; its data is lost");
    }
    std::vector<uint64_t> all;
    for (const auto& [ino, info] : c_.inodes_) all.push_back(ino);
    std::sort(all.begin(), all.end());
    AlignedBuffer one;
    for (uint64_t ino : all) {
      const InodeInfo& info = c_.inodes_.at(ino);
      if (info.unusable) {
        act(false, "symbolic link " + path(ino) + " has no valid target: removed");
        continue;
      }
      if (!read(ino, one)) continue;
      auto inode = decode_inode(one.span(), ino, sb_.csum_seed, g_);
      if (!inode) continue;
      if (ino == sb_.root_inode && (inode->mode & S_IFMT) != S_IFDIR) {
        act(false, "the root inode is not a directory: replaced by an empty directory");
        continue;
      }
      kept_.insert(ino);
      inodes_[ino] = *inode;
      old_inodes_[ino] = *inode;
      info_[ino] = info;
    }
    if (!kept_.count(sb_.root_inode)) {
      Inode root = new_directory(sb_.root_inode, 0755);
      kept_.insert(sb_.root_inode);
      inodes_[sb_.root_inode] = root;
      info_[sb_.root_inode].mode = root.mode;
      rewrite_.insert(sb_.root_inode);
      act(false, "the root directory was missing or damaged: a new, empty one was made");
    }
    for (const BlockRef& r : c_.refs_) old_refs_[r.owner].push_back(r);
    for (uint64_t ino : kept_) {
      if (info_[ino].dir_bad) rewrite_.insert(ino);
    }
  }

  Inode new_directory(uint64_t ino, uint32_t perm) {
    Inode d;
    d.mode = S_IFDIR | perm;
    d.nlink = 2;
    d.parent = sb_.root_inode;
    d.flags = kInodeInlineDir;
    d.atime = d.mtime = d.ctime = d.crtime = now_timespec();
    const int64_t r = g_.rgrp_of(ino);
    d.generation = r >= 0 && c_.rgrps_[static_cast<size_t>(r)].header_ok ? c_.rgrps_[static_cast<size_t>(r)].header.next_generation : 1;
    d.size = bs_;
    return d;
  }

  // ---- the blocks each kept inode uses ----
  bool banned(uint64_t ino, uint64_t block) const { return banned_.count({ino, block}) != 0; }

  // The extent tree without the entries that cannot stand: children that do not decode or
  // belong elsewhere, extents out of their range, overlapping, outside the data area or
  // lost to another file. Changed nodes are rewritten in place; emptied ones are dropped.
  ExtentNode prune(uint64_t ino, const ExtentNode& node, uint64_t lo, uint64_t hi, std::vector<BlockRef>& refs,
                   std::vector<std::pair<uint64_t, uint64_t>>& lost, bool& changed) {
    ExtentNode out;
    out.depth = node.depth;
    if (node.depth == 0) {
      for (const Extent& e : node.extents) {
        const bool bad = e.logical < lo || e.logical_end() > hi ||
                         (!out.extents.empty() && out.extents.back().logical_end() > e.logical) ||
                         !in_data(e.physical, e.length) || banned(ino, e.physical);
        if (bad) {
          lost.emplace_back(e.logical, e.length);
          changed = true;
          continue;
        }
        out.extents.push_back(e);
        refs.push_back({e.physical, e.length, ino, "file data"});
      }
      return out;
    }
    AlignedBuffer one;
    for (size_t i = 0; i < node.children.size(); ++i) {
      const ExtentIndex& c = node.children[i];
      const uint64_t child_hi = i + 1 < node.children.size() ? node.children[i + 1].logical : hi;
      Result<ExtentNode> child = lunfs::error(EIO, "");
      if (c.logical >= lo && in_data(c.child, 1) && !banned(ino, c.child) && read(c.child, one)) {
        child = decode_extent_node(one.span(), c.child, sb_.csum_seed, ino, g_);
      }
      if (!child || child->depth + 1 != node.depth) {
        lost.emplace_back(c.logical, child_hi - c.logical);
        changed = true;
        continue;
      }
      bool child_changed = false;
      ExtentNode pruned = prune(ino, *child, c.logical, child_hi, refs, lost, child_changed);
      if (pruned.extents.empty() && pruned.children.empty()) {
        changed = true;
        continue;
      }
      if (child_changed) {
        auto b = fresh();
        encode_extent_node(pruned, ino, b->span(), c.child, old_sequence(c.child), sb_.csum_seed);
        put(kNewBlocks, c.child, b);
      }
      refs.push_back({c.child, 1, ino, "extent node"});
      out.children.push_back(c);
    }
    return out;
  }

  void compute_refs(uint64_t ino) {
    InodeInfo& info = info_[ino];
    Inode& inode = inodes_[ino];
    const uint32_t type = inode.mode & S_IFMT;
    const bool recompute = info.tree_bad || info.layout_bad || info.xattr_bad || changed_refs_.count(ino) ||
                           rewrite_.count(ino);
    if (!recompute) {
      refs_[ino] = old_refs_[ino];
      return;
    }
    std::vector<BlockRef> refs;
    if (info.layout_bad && type != S_IFREG && type != S_IFDIR) {
      inode.flags &= ~(kInodeExtents | kInodeInlineData);
      inode.content.clear();
      act(false, "special file " + path(ino) + " carried data: cleared");
      info.layout_bad = false;
    } else if (info.layout_bad && type == S_IFREG) {
      inode.flags |= kInodeExtents;
      inode.content = encode_extent_root(ExtentNode{}, bs_);
      act(false, "file " + path(ino) + " had no data layout: its " + n(inode.size) + " bytes now read as zeros");
      info.layout_bad = false;
    }
    if (inode.xattr_block != 0 && (info.xattr_bad || banned(ino, inode.xattr_block))) {
      inode.xattr_block = 0;
      act(false, "extended attributes of " + path(ino) + " lost (their block is damaged): removed");
    }
    if (rewrite_.count(ino)) {
      // A directory rewritten from its entries: its old blocks are left behind.
    } else if (inode.flags & kInodeExtents) {
      auto root = decode_extent_root(inode.content, ino, g_);
      ExtentNode pruned;
      std::vector<std::pair<uint64_t, uint64_t>> lost;
      bool changed = !root;
      if (root) pruned = prune(ino, *root, 0, UINT64_MAX, refs, lost, changed);
      if (!root) lost.emplace_back(0, UINT64_MAX);
      if (pruned.depth > 0 && pruned.children.empty()) pruned = ExtentNode{};
      if (changed) {
        inode.content = encode_extent_root(pruned, bs_);
        if (type == S_IFDIR) {
          rewrite_.insert(ino);  // its hash table is gone with the extents
          refs.clear();
        } else {
          act(false, "file " + path(ino) + ": bad extents cleared; data lost at logical blocks " + ranges_text(lost));
        }
      }
    }
    if (inode.xattr_block != 0) refs.push_back({inode.xattr_block, 1, ino, "xattr block"});
    refs_[ino] = std::move(refs);
    if (type == S_IFDIR && !rewrite_.count(ino)) {  // leaves: as the check found them
      for (const BlockRef& r : old_refs_[ino]) {
        if (std::string(r.what) == "directory leaf") refs_[ino].push_back(r);
      }
    }
  }

  // A block two owners claim stays with the lower inode number; the other loses it (its
  // extent cleared, or, for a directory, the directory rewritten from its entries).
  void resolve_double_use() {
    for (int round = 0; round < 16; ++round) {
      std::vector<BlockRef> all;
      for (const auto& [ino, refs] : refs_) all.insert(all.end(), refs.begin(), refs.end());
      std::sort(all.begin(), all.end(), [](const BlockRef& a, const BlockRef& b) {
        return a.start != b.start ? a.start < b.start : a.owner < b.owner;
      });
      std::set<uint64_t> losers;
      uint64_t prev_end = 0;
      const BlockRef* prev = nullptr;
      for (const BlockRef& r : all) {
        if (prev && r.start < prev_end) {
          // A scanned inode (named by nothing, found in a group whose bitmap was lost)
          // may be a stale copy: it never wins.
          const bool r_scanned = info_[r.owner].scanned, prev_scanned = info_[prev->owner].scanned;
          const BlockRef& loser = r_scanned != prev_scanned ? (r_scanned ? r : *prev) : (r.owner >= prev->owner ? r : *prev);
          if (is_dir(loser.owner) && std::string(loser.what) != "xattr block") {
            rewrite_.insert(loser.owner);
          } else {
            banned_.insert({loser.owner, loser.start});
          }
          losers.insert(loser.owner);
          act(false, "block " + n(r.start) + " was used twice (" + prev->what + " of " + path(prev->owner) +
                         ", " + r.what + " of " + path(r.owner) + "): " + path(loser.owner) + " loses it");
        }
        if (r.start + r.length > prev_end) {
          prev_end = r.start + r.length;
          prev = &r;
        }
      }
      if (losers.empty()) return;
      for (uint64_t ino : losers) {
        changed_refs_.insert(ino);
        compute_refs(ino);
      }
    }
  }

  // ---- the directory tree ----
  void rebuild_tree() {
    const uint64_t root = sb_.root_inode;
    // Each directory keeps one name: the entry in the directory its parent pointer gives,
    // or else the first one found.
    std::map<uint64_t, size_t> dir_name;
    std::map<uint64_t, uint32_t> names_found;
    for (const EntryRef& e : c_.entries_) {
      if (kept_.count(e.dir)) ++names_found[e.target];
    }
    // A salvaged entry whose inode number nothing vouches for stands only if nothing
    // contradicts it: a directory must name it as its parent, any other file must have
    // no other name (a flipped bit would otherwise give one file's name to another).
    auto contradicted = [&](const EntryRef& e) {
      return e.unverified && (is_dir(e.target) ? inodes_[e.target].parent != e.dir : names_found[e.target] > 1);
    };
    for (size_t i = 0; i < c_.entries_.size(); ++i) {
      const EntryRef& e = c_.entries_[i];
      if (!kept_.count(e.dir) || !kept_.count(e.target) || !is_dir(e.target) || contradicted(e)) continue;
      auto it = dir_name.find(e.target);
      if (it == dir_name.end() || (c_.entries_[it->second].dir != inodes_[e.target].parent && e.dir == inodes_[e.target].parent)) {
        dir_name[e.target] = i;
      }
    }
    for (uint64_t d : kept_) {
      if (is_dir(d)) entries_[d];
    }
    for (size_t i = 0; i < c_.entries_.size(); ++i) {
      const EntryRef& e = c_.entries_[i];
      if (!kept_.count(e.dir) || !is_dir(e.dir)) continue;
      const std::string where = "entry '" + e.name + "' of directory " + path(e.dir);
      if (!kept_.count(e.target)) {
        act(false, where + " dropped: " +
                       (c_.bad_inodes_.count(e.target) || c_.inodes_.count(e.target) ? "its inode was removed"
                                                                                     : "block " + n(e.target) + " is not an inode"));
        changed_dirs_.insert(e.dir);
        continue;
      }
      if (contradicted(e)) {
        act(false, where + " dropped: salvaged from a damaged block, it names inode " + n(e.target) +
                       (is_dir(e.target) ? ", a directory whose parent is another" : ", which has another name"));
        changed_dirs_.insert(e.dir);
        continue;
      }
      if (e.target == root) {
        act(false, where + " dropped: it names the root directory");
        changed_dirs_.insert(e.dir);
        continue;
      }
      if (is_dir(e.target) && (!dir_name.count(e.target) || dir_name[e.target] != i)) {
        act(false, where + " dropped: directory " + n(e.target) + " is named elsewhere too");
        changed_dirs_.insert(e.dir);
        continue;
      }
      if (!names_in_[e.dir].insert(e.name).second) {
        act(false, where + " dropped: the directory holds that name twice");
        changed_dirs_.insert(e.dir);
        continue;
      }
      DirEntry de{e.target, dir_name_hash(sb_.dir_hash_seed, e.name), dirent_type(inodes_[e.target].mode), e.name};
      if (de.type != e.type) {
        act(true, where + ": entry type set to the file's type");
        changed_dirs_.insert(e.dir);
      }
      entries_[e.dir].push_back(std::move(de));
    }
    for (const auto& [d, list] : entries_) {
      for (const DirEntry& e : list) ++named_[e.inode];
    }
    // Reachability from the root; the rest goes to lost+found.
    reach(root);
    for (;;) {
      std::vector<uint64_t> lost;
      for (uint64_t ino : kept_) {
        if (!reached_.count(ino) && !unnamed_unlinked(ino)) lost.push_back(ino);
      }
      if (lost.empty()) break;
      bool progress = false;
      for (uint64_t ino : lost) {
        if (reached_.count(ino) || named_[ino] > 0) continue;
        reconnect(ino);
        progress = true;
      }
      if (progress) continue;
      // Only cycles of directories are left: break one open at its lowest inode.
      const uint64_t ino = lost.front();
      for (auto& [d, list] : entries_) {
        auto it = std::remove_if(list.begin(), list.end(), [&](const DirEntry& e) { return e.inode == ino; });
        if (it != list.end()) {
          list.erase(it, list.end());
          changed_dirs_.insert(d);
        }
      }
      named_[ino] = 0;
      reconnect(ino);
    }
  }
  bool unnamed_unlinked(uint64_t ino) { return info_[ino].unlinked_state && named_[ino] == 0; }
  void reach(uint64_t from) {
    std::vector<uint64_t> todo{from};
    while (!todo.empty()) {
      uint64_t d = todo.back();
      todo.pop_back();
      if (!reached_.insert(d).second) continue;
      if (!is_dir(d)) continue;
      for (const DirEntry& e : entries_[d]) todo.push_back(e.inode);
    }
  }
  uint64_t lost_found() {
    if (lost_found_) return lost_found_;
    for (const DirEntry& e : entries_[sb_.root_inode]) {
      if (e.name == kLostFound && is_dir(e.inode)) {
        lost_found_name_ = kLostFound;
        return lost_found_ = e.inode;
      }
    }
    const uint64_t ino = allocate();
    if (ino == 0) return 0;
    Inode d = new_directory(ino, 0700);
    kept_.insert(ino);
    inodes_[ino] = d;
    info_[ino].mode = d.mode;
    rewrite_.insert(ino);
    entries_[ino];
    const std::string name = free_name(sb_.root_inode, kLostFound);
    lost_found_name_ = name;
    entries_[sb_.root_inode].push_back({ino, dir_name_hash(sb_.dir_hash_seed, name), dirent_type(d.mode), name});
    changed_dirs_.insert(sb_.root_inode);
    ++named_[ino];
    reached_.insert(ino);
    act(false, "/" + name + " created (inode " + n(ino) + ")");
    return lost_found_ = ino;
  }
  // `want`, or `want.1`, `want.2`, ... when a directory already holds that name.
  std::string free_name(uint64_t dir, const std::string& want) {
    std::string name = want;
    for (int k = 1; names_in_[dir].count(name); ++k) name = want + "." + n(static_cast<uint64_t>(k));
    names_in_[dir].insert(name);
    return name;
  }
  void reconnect(uint64_t ino) {
    const uint64_t lf = lost_found();
    if (lf == 0) {  // no free block for it: the file stays lost, and the check says so
      reached_.insert(ino);
      return;
    }
    const std::string name = free_name(lf, "#" + n(ino));
    entries_[lf].push_back({ino, dir_name_hash(sb_.dir_hash_seed, name), dirent_type(inodes_[ino].mode), name});
    changed_dirs_.insert(lf);
    ++named_[ino];
    act(false, std::string(is_dir(ino) ? "directory " : "file ") + path(ino) + " was in no directory: reconnected as /" + lost_found_name_ + "/" + name);
    reach(ino);
  }

  // A block free in the old bitmaps and used by nothing, old or new: a repair never
  // overwrites a block that the state before it still uses, so a cut repair loses nothing.
  uint64_t allocate() {
    for (; alloc_rgrp_ < c_.rgrps_.size(); ++alloc_rgrp_, alloc_next_ = 0) {
      const RgrpInfo& info = c_.rgrps_[alloc_rgrp_];
      if (!info.bitmaps_ok) continue;
      const RgrpLocation loc = g_.rgrp(static_cast<uint32_t>(alloc_rgrp_));
      for (; alloc_next_ < loc.data_blocks; ++alloc_next_) {
        const uint64_t b = loc.first_data + alloc_next_;
        if (!info.bits.empty() && info.state(alloc_next_) != BlockState::kFree) continue;
        if (old_ref_at(b) || allocated_.count(b)) continue;
        allocated_.insert(b);
        ++alloc_next_;
        return b;
      }
    }
    return 0;
  }
  bool old_ref_at(uint64_t b) const {  // c_.refs_ is sorted by start (pass 6)
    auto it = std::upper_bound(c_.refs_.begin(), c_.refs_.end(), b,
                               [](uint64_t v, const BlockRef& r) { return v < r.start; });
    for (int back = 0; it != c_.refs_.begin() && back < 64; ++back) {
      --it;
      if (it->start <= b && b < it->start + it->length) return true;
    }
    return kept_.count(b) || c_.bad_inodes_.count(b);
  }

  // ---- writing ----
  void write_directories() {
    std::set<uint64_t> dirs(rewrite_.begin(), rewrite_.end());
    dirs.insert(changed_dirs_.begin(), changed_dirs_.end());
    for (uint64_t d : dirs) {
      if (!kept_.count(d)) continue;
      if (!rewrite_.count(d)) {  // its old blocks are left behind
        rewrite_.insert(d);
        compute_refs(d);
      }
      std::vector<DirEntry>& list = entries_[d];
      std::sort(list.begin(), list.end(), [](const DirEntry& a, const DirEntry& b) {
        return a.hash != b.hash ? a.hash < b.hash : a.name < b.name;
      });
      Inode& inode = inodes_[d];
      inode.flags &= ~(kInodeInlineDir | kInodeHashedDir | kInodeExtents | kInodeInlineData);
      inode.dir_entries = list.size();
      inode.dir_depth = 0;
      std::vector<uint8_t> packed = encode_dir_entries(list);
      if (packed.size() <= inode_content_capacity(bs_)) {
        inode.flags |= kInodeInlineDir;
        inode.content = std::move(packed);
      } else if (!write_hashed(d, inode, list)) {
        act(false, "directory " + path(d) + " could not be rebuilt: no free blocks");
      }
      if (old_inodes_.count(d) && info_[d].dir_bad) act(false, "directory " + path(d) + " rebuilt from the entries that could be read");
    }
  }
  // The smallest hash table whose leaves each fit in one block (chains only at full depth).
  bool write_hashed(uint64_t d, Inode& inode, const std::vector<DirEntry>& list) {
    const size_t cap = dir_leaf_capacity_bytes(bs_);
    uint32_t depth = 1;
    std::vector<std::vector<DirEntry>> buckets;
    for (;; ++depth) {
      buckets.assign(size_t{1} << depth, {});
      std::vector<size_t> bytes(buckets.size());
      bool fits = true;
      for (const DirEntry& e : list) {
        const size_t i = e.hash >> (32 - depth);
        buckets[i].push_back(e);
        bytes[i] += e.encoded_size();
        fits = fits && bytes[i] <= cap;
      }
      if (fits || depth == kMaxDirDepth) break;
    }
    const uint32_t per = dir_hash_pointers_per_block(bs_);
    const uint64_t slots = buckets.size();
    const uint64_t table_blocks = (slots + per - 1) / per;
    std::vector<uint64_t> table;
    for (uint64_t t = 0; t < table_blocks; ++t) table.push_back(allocate());
    std::vector<uint64_t> heads(slots);
    std::vector<BlockRef>& refs = refs_[d];
    for (uint64_t i = 0; i < slots; ++i) {
      // Split a bucket into a chain of full leaves (only when full depth is not enough).
      std::vector<std::vector<DirEntry>> chain(1);
      size_t used = 0;
      for (const DirEntry& e : buckets[i]) {
        if (used + e.encoded_size() > cap) {
          chain.emplace_back();
          used = 0;
        }
        chain.back().push_back(e);
        used += e.encoded_size();
      }
      std::vector<uint64_t> blocks;
      for (size_t k = 0; k < chain.size(); ++k) blocks.push_back(allocate());
      if (std::find(blocks.begin(), blocks.end(), 0) != blocks.end()) return false;
      for (size_t k = 0; k < chain.size(); ++k) {
        DirLeaf leaf{d, static_cast<uint32_t>(i), static_cast<uint16_t>(depth), k + 1 < chain.size() ? blocks[k + 1] : 0,
                     chain[k]};
        auto b = fresh();
        encode_dir_leaf(leaf, b->span(), blocks[k], 0, sb_.csum_seed);
        put(kNewBlocks, blocks[k], b);
        refs.push_back({blocks[k], 1, d, "directory leaf"});
      }
      heads[i] = blocks[0];
    }
    if (std::find(table.begin(), table.end(), 0) != table.end()) return false;
    ExtentNode root;
    for (uint64_t t = 0; t < table_blocks; ++t) {
      DirHashBlock h{d, static_cast<uint32_t>(t), {}};
      const uint64_t end = std::min<uint64_t>(slots, (t + 1) * per);
      h.leaves.assign(heads.begin() + static_cast<ptrdiff_t>(t * per), heads.begin() + static_cast<ptrdiff_t>(end));
      auto b = fresh();
      encode_dir_hash(h, b->span(), table[t], 0, sb_.csum_seed);
      put(kNewBlocks, table[t], b);
      root.extents.push_back({t, table[t], 1, 0});
      refs.push_back({table[t], 1, d, "file data"});
    }
    inode.flags |= kInodeExtents | kInodeHashedDir;
    inode.dir_depth = depth;
    inode.content = encode_extent_root(root, bs_);
    return true;
  }

  void write_inodes() {
    std::map<uint64_t, uint32_t> subdirs, names;
    std::map<uint64_t, uint64_t> parent;
    for (const auto& [d, list] : entries_) {
      if (!kept_.count(d)) continue;
      for (const DirEntry& e : list) {
        ++names[e.inode];
        if (is_dir(e.inode)) {
          ++subdirs[d];
          parent[e.inode] = d;
        }
      }
    }
    for (uint64_t ino : kept_) {
      Inode& inode = inodes_[ino];
      const std::string before_nlink = n(inode.nlink);
      if (is_dir(ino)) {
        inode.nlink = 2 + subdirs[ino];
        inode.parent = ino == sb_.root_inode ? ino : (parent.count(ino) ? parent[ino] : inode.parent);
      } else {
        inode.nlink = unnamed_unlinked(ino) ? 0 : names[ino];
      }
      uint64_t blocks = 0;
      for (const BlockRef& r : refs_[ino]) blocks += r.length;
      inode.blocks = blocks;
      auto old = old_inodes_.find(ino);
      if (old != old_inodes_.end() && old->second == inode) continue;
      if (old != old_inodes_.end()) {
        const Inode& o = old->second;
        if (o.nlink != inode.nlink) act(true, path(ino) + ": link count " + before_nlink + " set to " + n(inode.nlink));
        if (o.blocks != inode.blocks) act(true, path(ino) + ": block count " + n(o.blocks) + " set to " + n(inode.blocks));
        if (o.parent != inode.parent && is_dir(ino)) act(true, path(ino) + ": parent set to " + n(inode.parent));
      }
      auto b = fresh();
      encode_inode(inode, b->span(), ino, old != old_inodes_.end() ? old_sequence(ino) : 0, sb_.csum_seed);
      put(kInodes, ino, b);
    }
  }

  // ---- bitmaps, resource group headers, statfs ----
  void bitmaps() {
    const uint32_t per = Geometry::blocks_per_bitmap(bs_);
    std::vector<std::vector<uint8_t>> bits(c_.rgrps_.size());
    auto mark = [&](uint64_t block, BlockState s) {
      const int64_t r = g_.rgrp_of(block);
      if (r < 0) return;
      const RgrpLocation loc = g_.rgrp(static_cast<uint32_t>(r));
      auto& v = bits[static_cast<size_t>(r)];
      if (v.empty()) v.assign(uint64_t{loc.bitmap_blocks} * per / 4, 0);
      const uint64_t i = block - loc.first_data;
      v[i / 4] = static_cast<uint8_t>((v[i / 4] & ~(3u << (i % 4 * 2))) | (static_cast<unsigned>(s) << (i % 4 * 2)));
    };
    std::vector<uint64_t> max_generation(c_.rgrps_.size());
    for (uint64_t ino : kept_) {
      mark(ino, unnamed_unlinked(ino) ? BlockState::kUnlinked : BlockState::kDinode);
      if (const int64_t r = g_.rgrp_of(ino); r >= 0) {
        max_generation[static_cast<size_t>(r)] = std::max(max_generation[static_cast<size_t>(r)], inodes_[ino].generation);
      }
    }
    for (const auto& [ino, refs] : refs_) {
      if (!kept_.count(ino)) continue;
      for (const BlockRef& r : refs) {
        for (uint64_t b = r.start; b < r.start + r.length; ++b) mark(b, BlockState::kUsed);
      }
    }
    for (uint32_t r = 0; r < c_.rgrps_.size(); ++r) {
      const RgrpInfo& info = c_.rgrps_[r];
      const RgrpLocation loc = g_.rgrp(r);
      const std::string where = "resource group " + n(r);
      RgrpHeader h = info.header;
      uint64_t counts[4] = {};
      auto state = [&](uint32_t j) {
        return bits[r].empty() ? BlockState::kFree : static_cast<BlockState>((bits[r][j / 4] >> (j % 4 * 2)) & 3);
      };
      uint64_t changed = 0;
      for (uint32_t j = 0; j < loc.data_blocks; ++j) {
        const BlockState s = state(j);
        ++counts[static_cast<int>(s)];
        const BlockState old = info.bits.empty() ? BlockState::kFree : info.state(j);
        if (info.bitmaps_ok && old != s) ++changed;
      }
      const bool uninit_stays = info.header_ok && (h.flags & kRgrpBitmapUninit) && bits[r].empty();
      if (!uninit_stays && (!info.bitmaps_ok || changed > 0)) {
        for (uint32_t b = 0; b < loc.bitmap_blocks; ++b) {
          BitmapBlock bm{r, b, std::vector<uint8_t>(bs_ - kBitmapDataOffset, 0)};
          const uint32_t covered = std::min<uint32_t>(per, loc.data_blocks - b * per);
          bool differs = !info.bitmaps_ok || info.bits.empty();
          for (uint32_t j = 0; j < covered; ++j) {
            bm.set(j, state(b * per + j));
            if (!differs && info.state(b * per + j) != state(b * per + j)) differs = true;
          }
          if (!differs) continue;
          auto buf = fresh();
          encode_bitmap(bm, buf->span(), loc.header + 1 + b, 0, sb_.csum_seed);
          put(kBitmaps, loc.header + 1 + b, buf);
        }
        act(true, where + ": bitmap rebuilt from what the files use" +
                      (info.bitmaps_ok ? " (" + n(changed) + " block states changed)" : " (it was unreadable)"));
      }
      if (!info.header_ok) {
        h = RgrpHeader{};
        h.index = r;
        h.first_data = loc.first_data;
        h.data_blocks = loc.data_blocks;
        h.bitmap_blocks = loc.bitmap_blocks;
        h.next_generation = max_generation[r] + 1;
      }
      if (!uninit_stays) h.flags &= ~kRgrpBitmapUninit;
      h.free_blocks = static_cast<uint32_t>(counts[0]);
      h.dinodes = static_cast<uint32_t>(counts[3]);
      h.unlinked = static_cast<uint32_t>(counts[2]);
      h.next_generation = std::max<uint64_t>(h.next_generation, max_generation[r] + 1);
      total_free_ += counts[0];
      total_dinodes_ += counts[3] + counts[2];
      if (info.header_ok && h == info.header) continue;
      auto buf = fresh();
      encode_rgrp_header(h, buf->span(), loc.header, 0, sb_.csum_seed);
      put(kBitmaps, loc.header, buf);
      act(true, where + (info.header_ok ? ": header counts fixed" : ": header rebuilt"));
    }
  }

  void statfs() {
    const bool any_bad = std::any_of(c_.statfs_block_bad_.begin(), c_.statfs_block_bad_.end(), [](bool b) { return b; });
    if (!any_bad && c_.statfs_valid_ && c_.statfs_free_ == static_cast<int64_t>(total_free_) &&
        c_.statfs_dinodes_ == static_cast<int64_t>(total_dinodes_)) {
      return;
    }
    for (uint32_t s = 0; s <= g_.journal_count; ++s) {
      const bool master = s == g_.journal_count;
      Statfs st;
      st.slot = master ? Statfs::kNoSlot : s;
      if (master) {
        st.free_blocks = static_cast<int64_t>(total_free_);
        st.dinodes = static_cast<int64_t>(total_dinodes_);
      }
      const uint64_t block = master ? g_.statfs_block : g_.statfs_delta(s);
      auto buf = fresh();
      encode_statfs(st, buf->span(), block, sb_.csum_seed);
      put(kTotals, block, buf);
    }
    act(true, "statfs totals rewritten: " + n(total_free_) + " free blocks, " + n(total_dinodes_) + " inodes");
  }

  Checker& c_;
  const Superblock& sb_;
  const Geometry& g_;
  const uint32_t bs_;
  RepairPlan plan_;
  std::map<uint64_t, std::pair<uint64_t, std::string>> name_of_;
  std::set<uint64_t> kept_;
  std::map<uint64_t, Inode> inodes_, old_inodes_;
  std::map<uint64_t, InodeInfo> info_;
  std::map<uint64_t, std::vector<BlockRef>> old_refs_, refs_;
  std::set<std::pair<uint64_t, uint64_t>> banned_;
  std::set<uint64_t> changed_refs_, rewrite_, changed_dirs_, reached_, allocated_;
  std::map<uint64_t, std::vector<DirEntry>> entries_;
  std::map<uint64_t, uint32_t> named_;
  std::map<uint64_t, std::set<std::string>> names_in_;
  uint64_t lost_found_ = 0;
  std::string lost_found_name_;
  size_t alloc_rgrp_ = 0;
  uint32_t alloc_next_ = 0;
  uint64_t total_free_ = 0, total_dinodes_ = 0;
};

namespace {

// The slot whose journal carries the repair: the first whose header decodes and whose
// log is sound (after the replay every repair run starts with, it is then empty).
Status write_plan(BlockDevice& dev, const Superblock& sb, RepairPlan& plan, const std::vector<bool>& slot_bad) {
  const Geometry& g = sb.geometry;
  uint32_t slot = 0;
  while (slot < g.journal_count && slot_bad[slot]) ++slot;
  if (slot == g.journal_count) {
    // No slot can carry it (every header or log is damaged): slot 0's new header, which
    // resets its journal, goes first, directly (one block, written whole or not at all;
    // the next run redoes it).
    slot = 0;
    auto& image = plan.writes.at(g.slot_header(0)).second;
    LUNFS_TRY(dev.write(g.slot_header(0) * g.block_size, image->span()));
    LUNFS_TRY(dev.flush());
    plan.writes.erase(g.slot_header(0));
  }
  journal::JournalOptions options;
  options.commit_interval = std::chrono::milliseconds(0);
  LUNFS_ASSIGN(auto j, journal::Journal::open(dev, sb, slot, options));
  // Group commit joins what fits into one transaction; larger repairs go in phase order.
  const size_t chunk = std::max<size_t>(1, g.journal_blocks / 5);
  std::vector<std::pair<Phase, uint64_t>> order;
  for (const auto& [block, w] : plan.writes) order.push_back({w.first, block});
  std::sort(order.begin(), order.end());
  TransactionRecord txn;
  for (size_t i = 0; i < order.size(); ++i) {
    txn.blocks.push_back({order[i].second, plan.writes.at(order[i].second).second});
    if (txn.blocks.size() == chunk || i + 1 == order.size()) {
      LUNFS_TRY(j->submit(std::move(txn)));
      txn = TransactionRecord{};
    }
  }
  LUNFS_TRY(j->commit());
  return j->checkpoint();
}

}  // namespace

}  // namespace lunfs::fsck

namespace lunfs {

Result<RepairOutcome> repair_filesystem(BlockDevice& dev, const RepairOptions& options) {
  RepairOutcome out;
  {
    LUNFS_ASSIGN(LocatedSuperblock located, locate_superblock(dev));
    LUNFS_ASSIGN(auto dirty, find_dirty_journals(dev, located.sb));
    LUNFS_ASSIGN(out.replayed, replay_journals(dev, located.sb, dirty));
  }
  FsckOptions check_options;
  check_options.verbose = options.verbose;
  check_options.on_progress = options.on_progress;
  // A repair can uncover more (a directory rebuilt names files the check never reached), so
  // check again after each, a bounded number of times.
  constexpr int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    fsck::Checker checker(dev, check_options);
    LUNFS_ASSIGN(FsckReport report, checker.run());
    if (round == 0) out.first = report;
    out.last = report;
    if (report.errors() == 0 || round + 1 == kRounds) break;
    fsck::Repairer repairer(checker);
    fsck::RepairPlan plan = repairer.plan();
    if (plan.writes.empty()) break;
    const bool unsafe = std::any_of(plan.actions.begin(), plan.actions.end(), [](const RepairAction& a) { return !a.safe; });
    out.actions.insert(out.actions.end(), plan.actions.begin(), plan.actions.end());
    if (options.preen && unsafe) {
      out.refused = true;
      break;
    }
    std::vector<bool> slot_bad(report.sb.geometry.journal_count);
    for (uint32_t s = 0; s < slot_bad.size(); ++s) slot_bad[s] = checker.slot_unusable(s);
    LUNFS_TRY(fsck::write_plan(dev, report.sb, plan, slot_bad));
    out.wrote = true;
  }
  return out;
}

}  // namespace lunfs

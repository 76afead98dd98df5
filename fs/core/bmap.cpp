// Extent tree operations; see bmap.h.
#include "fs/core/bmap.h"

#include <algorithm>
#include <limits>

#include "fs/core/volume.h"

namespace lunfs {

using namespace ondisk;

namespace {
constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();

bool mergeable(const Extent& a, const Extent& b) {
  return a.logical_end() == b.logical && a.physical + a.length == b.physical && a.flags == b.flags &&
         // Physically adjacent data blocks are always in one resource group: the next
         // group's header and bitmaps sit between two groups' data areas.
         uint64_t{a.length} + b.length <= 0xFFFFFFFFu;
}
}  // namespace

Result<std::shared_ptr<const ExtentNode>> ExtentTree::read_node(uint64_t blocknr) {
  auto img = txn_ ? txn_->read(blocknr) : vol_.cache.get(blocknr);
  if (!img) return img.status();
  if (auto known = vol_.extent_nodes.find(blocknr, *img, ino_.ino())) return std::move(*known);
  auto node = decode_extent_node((*img)->span(), blocknr, vol_.sb.csum_seed, ino_.ino(), vol_.g);
  if (!node) {
    vol_.log_line("lunfs: inode " + std::to_string(ino_.ino()) + ": " + node.status().message());
    return node.status();
  }
  auto decoded = std::make_shared<const ExtentNode>(std::move(*node));
  vol_.extent_nodes.remember(blocknr, *img, ino_.ino(), decoded);
  return decoded;
}

Result<const ExtentNode*> ExtentTree::root_node() {
  static const ExtentNode kEmpty{};
  if (!(ino_.d.flags & kInodeExtents)) return &kEmpty;
  if (!ino_.decoded_root || ino_.decoded_root_source != ino_.d.content) {
    auto node = decode_extent_root(ino_.d.content, ino_.ino(), vol_.g);
    if (!node) {
      vol_.log_line("lunfs: " + node.status().message());
      return node.status();
    }
    ino_.decoded_root_source = ino_.d.content;
    ino_.decoded_root = std::move(*node);
  }
  return &*ino_.decoded_root;
}

Result<ExtentNode> ExtentTree::root() {
  LUNFS_ASSIGN(const ExtentNode* node, root_node());
  return *node;
}

Status ExtentTree::descend(uint64_t lb, Path& path, uint64_t* hi) {
  path.clear();
  *hi = kNoLimit;
  LUNFS_ASSIGN(ExtentNode node, root());
  path.push_back({std::move(node), 0, 0});
  while (path.back().node.depth > 0) {
    Level& l = path.back();
    auto& ch = l.node.children;
    if (ch.empty()) return error(EIO, "inode " + std::to_string(ino_.ino()) + ": empty extent index node");
    auto it = std::upper_bound(ch.begin(), ch.end(), lb, [](uint64_t v, const ExtentIndex& c) { return v < c.logical; });
    size_t idx = it == ch.begin() ? 0 : static_cast<size_t>(it - ch.begin()) - 1;
    l.index = idx;
    if (idx + 1 < ch.size()) *hi = std::min(*hi, ch[idx + 1].logical);
    uint64_t child = ch[idx].child;
    uint16_t want_depth = l.node.depth - 1;
    LUNFS_ASSIGN(auto next, read_node(child));
    if (next->depth != want_depth) {
      vol_.log_line("lunfs: inode " + std::to_string(ino_.ino()) + ": extent node " + std::to_string(child) +
                    " at the wrong depth");
      return error(EIO, "extent node " + std::to_string(child) + " at the wrong depth");
    }
    path.push_back({*next, child, 0});
    if (path.size() > kMaxExtentDepth + 1) return error(EIO, "extent tree too deep");
  }
  return Status::ok();
}

Result<const ExtentNode*> ExtentTree::peek_leaf(uint64_t lb, uint64_t* hi, std::shared_ptr<const ExtentNode>& hold) {
  // descend()'s walk and checks, without the copies.
  *hi = kNoLimit;
  LUNFS_ASSIGN(const ExtentNode* node, root_node());
  for (size_t level = 0; node->depth > 0; ++level) {
    auto& ch = node->children;
    if (ch.empty()) return error(EIO, "inode " + std::to_string(ino_.ino()) + ": empty extent index node");
    auto it = std::upper_bound(ch.begin(), ch.end(), lb, [](uint64_t v, const ExtentIndex& c) { return v < c.logical; });
    size_t idx = it == ch.begin() ? 0 : static_cast<size_t>(it - ch.begin()) - 1;
    if (idx + 1 < ch.size()) *hi = std::min(*hi, ch[idx + 1].logical);
    uint64_t child = ch[idx].child;
    uint16_t want_depth = node->depth - 1;
    LUNFS_ASSIGN(auto next, read_node(child));
    if (next->depth != want_depth) {
      vol_.log_line("lunfs: inode " + std::to_string(ino_.ino()) + ": extent node " + std::to_string(child) +
                    " at the wrong depth");
      return error(EIO, "extent node " + std::to_string(child) + " at the wrong depth");
    }
    if (level + 2 > kMaxExtentDepth + 1) return error(EIO, "extent tree too deep");
    hold = std::move(next);
    node = hold.get();
  }
  return node;
}

Result<std::optional<Extent>> ExtentTree::find(uint64_t lb) {
  uint64_t cur = lb;
  std::shared_ptr<const ExtentNode> hold;
  for (;;) {
    uint64_t hi;
    LUNFS_ASSIGN(const ExtentNode* leaf, peek_leaf(cur, &hi, hold));
    for (const Extent& e : leaf->extents) {
      if (e.logical_end() > lb) return std::optional<Extent>(e);
    }
    if (hi == kNoLimit) return std::optional<Extent>();
    cur = hi;
  }
}

uint64_t ExtentTree::goal_for(uint64_t lb) {
  if (lb == 0) return 0;
  uint64_t hi;
  std::shared_ptr<const ExtentNode> hold;
  auto leaf = peek_leaf(lb - 1, &hi, hold);
  if (!leaf) return 0;
  const Extent* best = nullptr;
  for (const Extent& e : (*leaf)->extents) {
    if (e.logical <= lb - 1) best = &e;
  }
  if (!best) return 0;
  return best->physical + std::min<uint64_t>(lb - best->logical, best->length);
}

size_t ExtentTree::capacity(const Level& l) const {
  size_t area = l.blocknr == 0 ? extent_root_area(vol_.bs) : extent_block_area(vol_.bs);
  return extent_capacity(area, l.node.depth);
}

Status ExtentTree::write_level(const Level& l) {
  if (l.blocknr == 0) {
    ino_.d.content = encode_extent_root(l.node, vol_.bs);
    ino_.decoded_root_source = ino_.d.content;
    ino_.decoded_root = l.node;
    ino_.d.flags = (ino_.d.flags & ~(kInodeInlineData | kInodeInlineDir)) | kInodeExtents;
    ino_.dirty(*txn_);
    return Status::ok();
  }
  auto img = txn_->new_block();
  encode_extent_node(l.node, ino_.ino(), img->span(), l.blocknr, txn_->sequence(), vol_.sb.csum_seed);
  txn_->put(l.blocknr, img);
  // The node just encoded is what decoding the new image would give: the next walk (the
  // same write's second transaction, the next write) finds it without decoding.
  vol_.extent_nodes.remember(l.blocknr, img, ino_.ino(), std::make_shared<const ExtentNode>(l.node));
  return Status::ok();
}

Status ExtentTree::fix_overflow(Path& path, size_t level) {
  // Level `level` changed; a level above changes only when a child split.
  for (size_t lv = level + 1; lv-- > 0;) {
    Level& l = path[lv];
    size_t count = l.node.depth == 0 ? l.node.extents.size() : l.node.children.size();
    if (count <= capacity(l)) return write_level(l);
    LUNFS_ASSIGN(Allocator::Run run, vol_.alloc.alloc_blocks(*txn_, ino_.ino(), 1));
    ino_.d.blocks += 1;
    if (lv == 0) {
      // The root is full: its entries move into a new block; the root gains a level.
      if (l.node.depth + 1 > kMaxExtentDepth) return error(EFBIG, "extent tree at its maximum depth");
      Level child{std::move(l.node), run.start, l.index};
      l.node = ExtentNode{};
      l.index = 0;
      l.node.depth = child.node.depth + 1;
      l.node.children.push_back({0, run.start});
      path.insert(path.begin() + 1, std::move(child));
      // The new child may itself be over capacity (root capacity < block capacity only
      // by a little, so one more pass settles it).
      LUNFS_TRY(fix_overflow(path, 1));
      return write_level(path[0]);
    }
    // Split: the upper half moves into the new right sibling.
    Level right{ExtentNode{}, run.start, 0};
    right.node.depth = l.node.depth;
    uint64_t first;
    if (l.node.depth == 0) {
      size_t half = l.node.extents.size() / 2;
      right.node.extents.assign(l.node.extents.begin() + half, l.node.extents.end());
      l.node.extents.resize(half);
      first = right.node.extents.front().logical;
    } else {
      size_t half = l.node.children.size() / 2;
      right.node.children.assign(l.node.children.begin() + half, l.node.children.end());
      l.node.children.resize(half);
      first = right.node.children.front().logical;
    }
    LUNFS_TRY(write_level(l));
    LUNFS_TRY(write_level(right));
    Level& parent = path[lv - 1];
    parent.node.children.insert(parent.node.children.begin() + parent.index + 1, ExtentIndex{first, run.start});
  }
  return Status::ok();  // not reached: the root always fits or pushes down
}

Status ExtentTree::insert(const Extent& e_in) {
  Extent e = e_in;
  while (e.length > 0) {
    Path path;
    uint64_t hi;
    LUNFS_TRY(descend(e.logical, path, &hi));
    Extent piece = e;
    if (hi != kNoLimit && piece.logical_end() > hi) piece.length = static_cast<uint32_t>(hi - piece.logical);
    auto& ex = path.back().node.extents;
    auto it = std::lower_bound(ex.begin(), ex.end(), piece.logical,
                               [](const Extent& a, uint64_t v) { return a.logical < v; });
    if ((it != ex.end() && it->logical < piece.logical_end()) ||
        (it != ex.begin() && std::prev(it)->logical_end() > piece.logical)) {
      return error(EIO, "inode " + std::to_string(ino_.ino()) + ": extent insert over a mapped range");
    }
    it = ex.insert(it, piece);
    if (it + 1 != ex.end() && mergeable(*it, *(it + 1))) {
      it->length += (it + 1)->length;
      ex.erase(it + 1);
    }
    if (it != ex.begin() && mergeable(*(it - 1), *it)) {
      (it - 1)->length += it->length;
      ex.erase(it);
    }
    LUNFS_TRY(fix_overflow(path, path.size() - 1));
    e.logical += piece.length;
    e.physical += piece.length;
    e.length -= piece.length;
  }
  return Status::ok();
}

Status ExtentTree::remove(uint64_t lb, uint64_t count, std::vector<Extent>* freed) {
  const uint64_t end = count > kNoLimit - lb ? kNoLimit : lb + count;
  uint64_t cur = lb;
  while (cur < end) {
    Path path;
    uint64_t hi;
    LUNFS_TRY(descend(cur, path, &hi));
    const uint64_t seg_end = std::min(end, hi);
    auto& ex = path.back().node.extents;
    std::vector<Extent> kept;
    bool changed = false;
    for (const Extent& x : ex) {
      if (x.logical_end() <= cur || x.logical >= seg_end) {
        kept.push_back(x);
        continue;
      }
      changed = true;
      uint64_t cut_lo = std::max(cur, x.logical), cut_hi = std::min<uint64_t>(seg_end, x.logical_end());
      if (x.logical < cut_lo) kept.push_back({x.logical, x.physical, static_cast<uint32_t>(cut_lo - x.logical), x.flags});
      if (freed) freed->push_back({cut_lo, x.physical + (cut_lo - x.logical), static_cast<uint32_t>(cut_hi - cut_lo), x.flags});
      if (cut_hi < x.logical_end()) {
        kept.push_back({cut_hi, x.physical + (cut_hi - x.logical), static_cast<uint32_t>(x.logical_end() - cut_hi), x.flags});
      }
    }
    if (changed) {
      ex = std::move(kept);
      LUNFS_TRY(fix_overflow(path, path.size() - 1));
    }
    if (seg_end == kNoLimit) break;
    cur = seg_end;
    // Nothing more to remove when the rest of the file has no extents.
    if (cur < end) {
      LUNFS_ASSIGN(auto next, find(cur));
      if (!next || next->logical >= end) break;
      cur = std::max(cur, next->logical);
    }
  }
  return Status::ok();
}

Result<std::vector<Extent>> ExtentTree::all() {
  std::vector<Extent> out;
  uint64_t cur = 0;
  for (;;) {
    Path path;
    uint64_t hi;
    LUNFS_TRY(descend(cur, path, &hi));
    for (const Extent& e : path.back().node.extents) out.push_back(e);
    if (hi == kNoLimit) return out;
    cur = hi;
  }
}

Status ExtentTree::collect_nodes(const ExtentNode& node, std::vector<uint64_t>& out) {
  if (node.depth == 0) return Status::ok();
  for (const ExtentIndex& c : node.children) {
    out.push_back(c.child);
    LUNFS_ASSIGN(auto child, read_node(c.child));
    LUNFS_TRY(collect_nodes(*child, out));
  }
  return Status::ok();
}

Status ExtentTree::clear_nodes() {
  LUNFS_ASSIGN(ExtentNode r, root());
  std::vector<uint64_t> nodes;
  LUNFS_TRY(collect_nodes(r, nodes));
  for (uint64_t b : nodes) {
    LUNFS_TRY(vol_.alloc.free_blocks(*txn_, b, 1));
    txn_->revoke(b);
    ino_.d.blocks -= 1;
  }
  return write_level(Level{ExtentNode{}, 0, 0});
}

Result<std::vector<Segment>> ExtentTree::map_range(uint64_t first, uint64_t count) {
  std::vector<Segment> out;
  uint64_t cur = first, end = first + count;
  while (cur < end) {
    LUNFS_ASSIGN(auto e, find(cur));
    if (!e || e->logical >= end) {
      out.push_back({cur, end - cur, 0, false});
      break;
    }
    if (e->logical > cur) {
      out.push_back({cur, e->logical - cur, 0, false});
      cur = e->logical;
    }
    uint64_t stop = std::min(end, e->logical_end());
    out.push_back({cur, stop - cur, e->physical + (cur - e->logical), (e->flags & kExtentUnwritten) != 0});
    cur = stop;
  }
  return out;
}

}  // namespace lunfs

// Directory operations; see dir.h.
#include "fs/core/dir.h"

#include <algorithm>
#include <bit>
#include <tuple>

#include "fs/core/bmap.h"
#include "fs/core/volume.h"

namespace lunfs {

using namespace ondisk;

namespace {

bool entry_less(const DirEntry& a, const DirEntry& b) {
  return std::tie(a.hash, a.name) < std::tie(b.hash, b.name);
}

size_t bytes_of(const std::vector<DirEntry>& v) {
  size_t n = 0;
  for (const auto& e : v) n += e.encoded_size();
  return n;
}

// Position of entry i in hash order: its hash and its rank among equal hashes.
uint64_t position(const std::vector<DirEntry>& v, size_t i) {
  uint64_t dup = 0;
  for (size_t k = i; k > 0 && v[k - 1].hash == v[i].hash; --k) ++dup;
  return (uint64_t{v[i].hash} << 16) | std::min<uint64_t>(dup, 0xFFFF);
}

uint64_t slot_of(uint32_t hash, uint32_t depth) { return depth == 0 ? 0 : hash >> (32 - depth); }

// Set in every readdir offset after a bucket that could not be read: a listing resumed
// there still ends in EIO instead of a clean end (offsets stop below 2^49).
constexpr uint64_t kPastDamage = uint64_t{1} << 62;

}  // namespace

bool Directory::hashed() const { return dir_.d.flags & kInodeHashedDir; }

uint32_t Directory::min_table_depth() const {
  return static_cast<uint32_t>(std::countr_zero(dir_hash_pointers_per_block(vol_.bs)));
}

Result<std::vector<DirEntry>> Directory::inline_entries() {
  auto e = decode_dir_entries(dir_.d.content, dir_.d.dir_entries, vol_.sb.dir_hash_seed, vol_.g,
                              BlockType::kInode, dir_.ino());
  if (!e) vol_.log_line("lunfs: " + e.status().message());
  return e;
}

Result<DirLeaf> Directory::read_leaf(uint64_t blocknr) {
  auto img = txn_ ? txn_->read(blocknr) : vol_.cache.get(blocknr);
  if (!img) return img.status();
  // Decoding checks every entry's name hash against the leaf's range: a create or an
  // unlink read the same leaf several times (Volume::dir_leaves).
  if (auto known = vol_.dir_leaves.find(blocknr, *img, dir_.ino())) return **known;
  auto leaf = decode_dir_leaf((*img)->span(), blocknr, vol_.sb.csum_seed, vol_.sb.dir_hash_seed, dir_.ino(), vol_.g);
  if (!leaf) {
    vol_.log_line("lunfs: directory " + std::to_string(dir_.ino()) + ": " + leaf.status().message());
    return leaf;
  }
  vol_.dir_leaves.remember(blocknr, *img, dir_.ino(), std::make_shared<const DirLeaf>(*leaf));
  return leaf;
}

void Directory::write_leaf(uint64_t blocknr, const DirLeaf& leaf) {
  looked_up_.reset();
  auto img = txn_->new_block();
  encode_dir_leaf(leaf, img->span(), blocknr, txn_->sequence(), vol_.sb.csum_seed);
  txn_->put(blocknr, img);
  vol_.dir_leaves.remember(blocknr, img, dir_.ino(), std::make_shared<const DirLeaf>(leaf));
}

Result<std::shared_ptr<const DirHashBlock>> Directory::read_hash_block(uint64_t phys, uint64_t t, uint32_t pointers) {
  auto img = txn_ ? txn_->read(phys) : vol_.cache.get(phys);
  if (!img) return img.status();
  if (auto known = vol_.dir_hash_blocks.find(phys, *img, dir_.ino())) {
    // The same image decodes alike only for the same place in a table of the same size.
    if ((*known)->table_index == t && (*known)->leaves.size() == pointers) return *known;
  }
  auto hb = decode_dir_hash((*img)->span(), phys, vol_.sb.csum_seed, dir_.ino(), static_cast<uint32_t>(t), pointers,
                            vol_.g);
  if (!hb) {
    vol_.log_line("lunfs: directory " + std::to_string(dir_.ino()) + ": " + hb.status().message());
    return hb.status();
  }
  auto decoded = std::make_shared<const DirHashBlock>(std::move(*hb));
  vol_.dir_hash_blocks.remember(phys, *img, dir_.ino(), decoded);
  return decoded;
}

void Directory::put_hash_block(uint64_t phys, const DirHashBlock& hb) {
  auto img = txn_->new_block();
  encode_dir_hash(hb, img->span(), phys, txn_->sequence(), vol_.sb.csum_seed);
  txn_->put(phys, img);
  vol_.dir_hash_blocks.remember(phys, img, dir_.ino(), std::make_shared<const DirHashBlock>(hb));
}

Result<uint64_t> Directory::table_block(uint64_t t) {
  ExtentTree tree(vol_, dir_, txn_);
  LUNFS_ASSIGN(auto ext, tree.find(t));
  if (!ext || ext->logical > t) {
    return error(EIO, "directory " + std::to_string(dir_.ino()) + ": hash table block " + std::to_string(t) + " missing");
  }
  return ext->physical + (t - ext->logical);
}

Result<uint64_t> Directory::table_pointer(uint64_t index) {
  const uint32_t per = dir_hash_pointers_per_block(vol_.bs);
  const uint64_t t = index / per;
  LUNFS_ASSIGN(uint64_t phys, table_block(t));
  const uint64_t size = uint64_t{1} << dir_.d.dir_depth;
  const auto pointers = static_cast<uint32_t>(std::min<uint64_t>(per, size - t * per));
  LUNFS_ASSIGN(auto hb, read_hash_block(phys, t, pointers));
  return hb->leaves[index % per];
}

Status Directory::set_pointers(uint64_t first, uint64_t count, uint64_t leaf) {
  looked_up_.reset();
  const uint32_t per = dir_hash_pointers_per_block(vol_.bs);
  const uint64_t size = uint64_t{1} << dir_.d.dir_depth;
  for (uint64_t t = first / per; t * per < first + count; ++t) {
    LUNFS_ASSIGN(uint64_t phys, table_block(t));
    const auto pointers = static_cast<uint32_t>(std::min<uint64_t>(per, size - t * per));
    LUNFS_ASSIGN(auto current, read_hash_block(phys, t, pointers));
    DirHashBlock hb = *current;
    const uint64_t lo = std::max(first, t * per), hi = std::min(first + count, t * per + pointers);
    for (uint64_t i = lo; i < hi; ++i) hb.leaves[i - t * per] = leaf;
    put_hash_block(phys, hb);
  }
  return Status::ok();
}

Result<std::vector<uint64_t>> Directory::read_table() {
  const uint64_t size = uint64_t{1} << dir_.d.dir_depth;
  const uint32_t per = dir_hash_pointers_per_block(vol_.bs);
  std::vector<uint64_t> table;
  table.reserve(size);
  for (uint64_t i = 0; i < size; i += per) {
    ExtentTree tree(vol_, dir_, txn_);
    LUNFS_ASSIGN(auto ext, tree.find(i / per));
    if (!ext || ext->logical > i / per) return error(EIO, "directory hash table block missing");
    uint64_t phys = ext->physical + (i / per - ext->logical);
    const auto pointers = static_cast<uint32_t>(std::min<uint64_t>(per, size - i));
    LUNFS_ASSIGN(auto hb, read_hash_block(phys, i / per, pointers));
    table.insert(table.end(), hb->leaves.begin(), hb->leaves.end());
  }
  return table;
}

Status Directory::write_table(const std::vector<uint64_t>& table) {
  looked_up_.reset();
  const uint32_t per = dir_hash_pointers_per_block(vol_.bs);
  ExtentTree tree(vol_, dir_, txn_);
  for (uint64_t t = 0; t * per < table.size(); ++t) {
    LUNFS_ASSIGN(auto ext, tree.find(t));
    if (!ext || ext->logical > t) return error(EIO, "directory hash table block missing");
    uint64_t phys = ext->physical + (t - ext->logical);
    DirHashBlock hb;
    hb.owner = dir_.ino();
    hb.table_index = static_cast<uint32_t>(t);
    hb.leaves.assign(table.begin() + t * per, table.begin() + std::min<uint64_t>(table.size(), (t + 1) * per));
    put_hash_block(phys, hb);
  }
  return Status::ok();
}

Result<Directory::Bucket> Directory::read_bucket(uint64_t head) {
  if (looked_up_ && looked_up_->blocks.front() == head) {
    Bucket b = std::move(*looked_up_);
    looked_up_.reset();
    return b;
  }
  Bucket b;
  for (uint64_t blocknr = head; blocknr != 0;) {
    // A chain longer than the blocks the directory owns loops.
    if (b.blocks.size() > dir_.d.blocks) {
      return error(EIO, "directory " + std::to_string(dir_.ino()) + ": overflow chain from leaf " +
                            std::to_string(head) + " loops");
    }
    LUNFS_ASSIGN(DirLeaf leaf, read_leaf(blocknr));
    if (b.blocks.empty()) {
      b.hash_prefix = leaf.hash_prefix;
      b.depth = leaf.depth;
    } else if (leaf.depth != b.depth || leaf.hash_prefix != b.hash_prefix) {
      return error(EIO, "directory " + std::to_string(dir_.ino()) + ": chained leaf " + std::to_string(blocknr) +
                            " covers another hash range than its head " + std::to_string(head));
    } else if (!leaf.entries.empty() && !b.entries.empty() && !entry_less(b.entries.back(), leaf.entries.front())) {
      return error(EIO, "directory " + std::to_string(dir_.ino()) + ": chained leaf " + std::to_string(blocknr) +
                            " is out of order");
    }
    b.blocks.push_back(blocknr);
    b.entries.insert(b.entries.end(), std::make_move_iterator(leaf.entries.begin()),
                     std::make_move_iterator(leaf.entries.end()));
    blocknr = leaf.next;
  }
  return b;
}

Result<Directory::Bucket> Directory::bucket_of(uint32_t hash) {
  LUNFS_ASSIGN(uint64_t head, table_pointer(slot_of(hash, dir_.d.dir_depth)));
  return read_bucket(head);
}

size_t Directory::leaves_needed(const std::vector<DirEntry>& entries) const {
  const size_t cap = dir_leaf_capacity_bytes(vol_.bs);
  size_t leaves = 1, used = 0;
  for (const auto& e : entries) {
    if (used + e.encoded_size() > cap) {
      ++leaves;
      used = 0;
    }
    used += e.encoded_size();
  }
  return leaves;
}

Status Directory::free_leaf(uint64_t blocknr) {
  looked_up_.reset();
  LUNFS_TRY(vol_.alloc.free_blocks(*txn_, blocknr, 1));
  txn_->revoke(blocknr);
  dir_.d.blocks -= 1;
  return Status::ok();
}

Status Directory::write_bucket(Bucket& b) {
  const size_t needed = leaves_needed(b.entries);
  while (b.blocks.size() < needed) {
    uint64_t goal = b.blocks.empty() ? dir_.ino() : b.blocks.back() + 1;
    LUNFS_ASSIGN(Allocator::Run run, vol_.alloc.alloc_blocks(*txn_, goal, 1));
    dir_.d.blocks += 1;
    b.blocks.push_back(run.start);
  }
  while (b.blocks.size() > needed) {
    LUNFS_TRY(free_leaf(b.blocks.back()));
    b.blocks.pop_back();
  }
  const size_t cap = dir_leaf_capacity_bytes(vol_.bs);
  auto it = b.entries.begin();
  for (size_t k = 0; k < b.blocks.size(); ++k) {
    DirLeaf leaf;
    leaf.owner = dir_.ino();
    leaf.hash_prefix = b.hash_prefix;
    leaf.depth = b.depth;
    leaf.next = k + 1 < b.blocks.size() ? b.blocks[k + 1] : 0;
    size_t used = 0;
    while (it != b.entries.end() && used + it->encoded_size() <= cap) {
      used += it->encoded_size();
      leaf.entries.push_back(*it++);
    }
    write_leaf(b.blocks[k], leaf);
  }
  return Status::ok();
}

Result<std::optional<DirEntry>> Directory::lookup(std::string_view name) {
  const uint32_t hash = dir_name_hash(vol_.sb.dir_hash_seed, name);
  auto find = [&](const std::vector<DirEntry>& entries) {
    auto it = std::lower_bound(entries.begin(), entries.end(), hash,
                               [](const DirEntry& e, uint32_t h) { return e.hash < h; });
    for (; it != entries.end() && it->hash == hash; ++it) {
      if (it->name == name) return std::optional<DirEntry>(*it);
    }
    return std::optional<DirEntry>();
  };
  if (!hashed()) {
    LUNFS_ASSIGN(auto entries, inline_entries());
    return find(entries);
  }
  LUNFS_ASSIGN(Bucket b, bucket_of(hash));
  auto found = find(b.entries);
  looked_up_ = std::move(b);
  return found;
}

Status Directory::modify_inline(const std::function<Status(std::vector<DirEntry>&)>& fn) {
  LUNFS_ASSIGN(auto entries, inline_entries());
  LUNFS_TRY(fn(entries));
  dir_.d.content = encode_dir_entries(entries);
  dir_.d.dir_entries = entries.size();
  dir_.dirty(*txn_);
  return Status::ok();
}

Status Directory::modify_bucket(std::string_view name,
                                const std::function<Status(std::vector<DirEntry>&)>& fn) {
  LUNFS_ASSIGN(Bucket b, bucket_of(dir_name_hash(vol_.sb.dir_hash_seed, name)));
  size_t before = b.entries.size();
  LUNFS_TRY(fn(b.entries));
  dir_.d.dir_entries = dir_.d.dir_entries + b.entries.size() - before;
  LUNFS_TRY(write_bucket(b));
  dir_.dirty(*txn_);
  if (b.entries.size() >= before) return Status::ok();
  LUNFS_ASSIGN(bool merged, merge_up(std::move(b)));
  // Only a merge can leave every pair of buddy pointers equal.
  return merged ? shrink_table() : Status::ok();
}

Status Directory::add(std::string_view name, uint64_t inode, uint8_t type) {
  DirEntry e{inode, dir_name_hash(vol_.sb.dir_hash_seed, name), type, std::string(name)};
  auto insert_sorted = [&](std::vector<DirEntry>& v) {
    v.insert(std::upper_bound(v.begin(), v.end(), e, entry_less), e);
    return Status::ok();
  };
  if (!hashed()) {
    LUNFS_ASSIGN(auto entries, inline_entries());
    if (bytes_of(entries) + e.encoded_size() <= inode_content_capacity(vol_.bs)) return modify_inline(insert_sorted);
    LUNFS_TRY(convert_to_hashed());
  }
  const uint32_t max_depth = std::max<uint32_t>(vol_.max_dir_depth, min_table_depth());
  for (int attempts = 0; attempts < 64; ++attempts) {
    uint64_t index = slot_of(e.hash, dir_.d.dir_depth);
    LUNFS_ASSIGN(uint64_t head, table_pointer(index));
    LUNFS_ASSIGN(Bucket b, read_bucket(head));
    std::vector<DirEntry> grown = b.entries;
    (void)insert_sorted(grown);  // always ok: it returns a Status only for modify_inline
    const bool fits = leaves_needed(grown) <= b.blocks.size();
    if (!fits && b.depth < dir_.d.dir_depth) {
      LUNFS_TRY(split_bucket(index, b));
    } else if (!fits && dir_.d.dir_depth < max_depth) {
      LUNFS_TRY(double_table());
    } else {
      // It fits, or the table may not grow: the chain takes it.
      b.entries = std::move(grown);
      dir_.d.dir_entries += 1;
      LUNFS_TRY(write_bucket(b));
      dir_.dirty(*txn_);
      return Status::ok();
    }
  }
  return error(ENOSPC, "directory " + std::to_string(dir_.ino()) + ": too many names with one hash");
}

Status Directory::convert_to_hashed() {
  LUNFS_ASSIGN(auto entries, inline_entries());
  const uint32_t depth = min_table_depth();
  LUNFS_ASSIGN(Allocator::Run table, vol_.alloc.alloc_blocks(*txn_, dir_.ino(), 1));
  LUNFS_ASSIGN(Allocator::Run leaf_run, vol_.alloc.alloc_blocks(*txn_, table.start + 1, 1));
  dir_.d.blocks += 2;
  // The content area changes from entries to an extent root.
  dir_.d.content = encode_extent_root(ExtentNode{}, vol_.bs);
  dir_.d.flags = (dir_.d.flags & ~kInodeInlineDir) | kInodeExtents | kInodeHashedDir;
  dir_.d.dir_depth = depth;
  ExtentTree tree(vol_, dir_, txn_);
  LUNFS_TRY(tree.insert({0, table.start, 1, 0}));
  DirLeaf leaf;
  leaf.owner = dir_.ino();
  leaf.entries = std::move(entries);
  write_leaf(leaf_run.start, leaf);
  LUNFS_TRY(write_table(std::vector<uint64_t>(uint64_t{1} << depth, leaf_run.start)));
  dir_.dirty(*txn_);
  return Status::ok();
}

Status Directory::split_bucket(uint64_t index, Bucket& b) {
  const uint32_t depth = dir_.d.dir_depth;
  Bucket low, high;
  low.depth = high.depth = static_cast<uint16_t>(b.depth + 1);
  low.hash_prefix = b.hash_prefix << 1;
  high.hash_prefix = (b.hash_prefix << 1) | 1;
  for (auto& e : b.entries) {
    bool upper = (e.hash >> (32 - low.depth)) & 1;
    (upper ? high : low).entries.push_back(std::move(e));
  }
  low.blocks = std::move(b.blocks);
  high.blocks.clear();
  LUNFS_TRY(write_bucket(low));
  LUNFS_TRY(write_bucket(high));
  // The old leaf covered 2^(depth - b.depth) slots; the upper half now points at `high`.
  uint64_t span = uint64_t{1} << (depth - b.depth);
  uint64_t first = index / span * span;
  return set_pointers(first + span / 2, span / 2, high.blocks.front());
}

Status Directory::double_table() {
  LUNFS_ASSIGN(auto table, read_table());
  const uint32_t per = dir_hash_pointers_per_block(vol_.bs);
  std::vector<uint64_t> bigger(table.size() * 2);
  for (uint64_t i = 0; i < bigger.size(); ++i) bigger[i] = table[i / 2];
  const uint64_t old_blocks = (table.size() + per - 1) / per;
  const uint64_t new_blocks = (bigger.size() + per - 1) / per;
  ExtentTree tree(vol_, dir_, txn_);
  for (uint64_t t = old_blocks; t < new_blocks;) {
    uint64_t goal = tree.goal_for(t);
    LUNFS_ASSIGN(Allocator::Run run, vol_.alloc.alloc_blocks(*txn_, goal, static_cast<uint32_t>(new_blocks - t)));
    dir_.d.blocks += run.length;
    LUNFS_TRY(tree.insert({t, run.start, run.length, 0}));
    t += run.length;
  }
  dir_.d.dir_depth += 1;
  dir_.dirty(*txn_);
  return write_table(bigger);
}

Result<bool> Directory::merge_up(Bucket b) {
  bool merged_any = false;
  const size_t half = dir_leaf_capacity_bytes(vol_.bs) / 2;
  while (b.depth > 0 && b.blocks.size() == 1 && bytes_of(b.entries) <= half) {
    const uint32_t depth = dir_.d.dir_depth;
    const uint64_t span = uint64_t{1} << (depth - b.depth);
    const uint32_t buddy_prefix = b.hash_prefix ^ 1;
    LUNFS_ASSIGN(uint64_t buddy_head, table_pointer(uint64_t{buddy_prefix} * span));
    LUNFS_ASSIGN(Bucket buddy, read_bucket(buddy_head));
    if (buddy.depth != b.depth || buddy.blocks.size() != 1 || bytes_of(b.entries) + bytes_of(buddy.entries) > half) {
      break;
    }
    // The lower prefix keeps its block; its entries sort first.
    Bucket& low = (b.hash_prefix & 1) ? buddy : b;
    Bucket& high = (b.hash_prefix & 1) ? b : buddy;
    Bucket merged;
    merged.blocks = low.blocks;
    merged.depth = static_cast<uint16_t>(b.depth - 1);
    merged.hash_prefix = b.hash_prefix >> 1;
    merged.entries = std::move(low.entries);
    merged.entries.insert(merged.entries.end(), std::make_move_iterator(high.entries.begin()),
                          std::make_move_iterator(high.entries.end()));
    LUNFS_TRY(free_leaf(high.blocks.front()));
    LUNFS_TRY(write_bucket(merged));
    LUNFS_TRY(set_pointers(uint64_t{high.hash_prefix} * span, span, merged.blocks.front()));
    dir_.dirty(*txn_);
    b = std::move(merged);
    merged_any = true;
  }
  return merged_any;
}

Status Directory::remove(std::string_view name) {
  const uint32_t hash = dir_name_hash(vol_.sb.dir_hash_seed, name);
  auto erase = [&](std::vector<DirEntry>& v) {
    auto it = std::find_if(v.begin(), v.end(), [&](const DirEntry& e) { return e.hash == hash && e.name == name; });
    if (it == v.end()) return error(ENOENT, std::string(name) + ": no such entry");
    v.erase(it);
    return Status::ok();
  };
  return hashed() ? modify_bucket(name, erase) : modify_inline(erase);
}

Status Directory::retarget(std::string_view name, uint64_t inode, uint8_t type) {
  const uint32_t hash = dir_name_hash(vol_.sb.dir_hash_seed, name);
  auto change = [&](std::vector<DirEntry>& v) {
    for (auto& e : v) {
      if (e.hash == hash && e.name == name) {
        e.inode = inode;
        e.type = type;
        return Status::ok();
      }
    }
    return error(ENOENT, std::string(name) + ": no such entry");
  };
  return hashed() ? modify_bucket(name, change) : modify_inline(change);
}

Status Directory::list(uint64_t offset, const std::function<bool(const DirEntry&, uint64_t)>& fn) {
  bool damaged = offset & kPastDamage;
  offset &= ~kPastDamage;
  auto emit = [&](const std::vector<DirEntry>& v, bool* stop) {
    for (size_t i = 0; i < v.size(); ++i) {
      uint64_t pos = position(v, i);
      if (pos + kFirstEntryOffset < offset) continue;
      if (!fn(v[i], (pos + kFirstEntryOffset + 1) | (damaged ? kPastDamage : 0))) {
        *stop = true;
        return;
      }
    }
  };
  bool stop = false;
  if (!hashed()) {
    LUNFS_ASSIGN(auto entries, inline_entries());
    emit(entries, &stop);
    return Status::ok();
  }
  const uint32_t depth = dir_.d.dir_depth;
  const uint64_t table_size = uint64_t{1} << depth;
  uint64_t start_hash = offset > kFirstEntryOffset ? ((offset - kFirstEntryOffset) >> 16) : 0;
  // One table lookup per bucket: a readdir call touches a few leaves, not the whole table.
  for (uint64_t i = slot_of(static_cast<uint32_t>(std::min<uint64_t>(start_hash, 0xFFFFFFFFu)), depth);
       i < table_size && !stop;) {
    LUNFS_ASSIGN(uint64_t head, table_pointer(i));
    auto b = read_bucket(head);
    if (!b && b.err() == EIO) {
      // A damaged leaf (read_leaf logged which): as ext4 and XFS list what the readable
      // blocks hold, the listing goes on past every slot that points at it.
      damaged = true;
      uint64_t next = i + 1;
      for (; next < table_size; ++next) {
        LUNFS_ASSIGN(uint64_t h, table_pointer(next));
        if (h != head) break;
      }
      i = next;
      continue;
    }
    if (!b) return b.status();
    emit(b->entries, &stop);
    uint64_t span = uint64_t{1} << (depth - std::min<uint32_t>(b->depth, depth));
    i = (i / span + 1) * span;
  }
  if (damaged && !stop) {
    return error(EIO, "directory " + std::to_string(dir_.ino()) + ": entries in damaged blocks not listed");
  }
  return Status::ok();
}

Status Directory::release_blocks() {
  if (!hashed()) return Status::ok();
  LUNFS_ASSIGN(auto table, read_table());
  std::sort(table.begin(), table.end());
  table.erase(std::unique(table.begin(), table.end()), table.end());
  for (uint64_t head : table) {
    LUNFS_ASSIGN(Bucket b, read_bucket(head));
    for (uint64_t leaf : b.blocks) LUNFS_TRY(free_leaf(leaf));
  }
  LUNFS_TRY(free_table_blocks(0));
  return ExtentTree(vol_, dir_, txn_).clear_nodes();
}

Status Directory::free_table_blocks(uint64_t first) {
  looked_up_.reset();
  ExtentTree tree(vol_, dir_, txn_);
  std::vector<Extent> freed;
  LUNFS_TRY(tree.remove(first, UINT64_MAX - first, &freed));
  for (const Extent& e : freed) {
    LUNFS_TRY(vol_.alloc.free_blocks(*txn_, e.physical, e.length));
    for (uint64_t b = e.physical; b < e.physical + e.length; ++b) txn_->revoke(b);
    dir_.d.blocks -= e.length;
  }
  return Status::ok();
}

Result<bool> Directory::table_can_halve() {
  if (dir_.d.dir_depth <= min_table_depth()) return false;
  const uint32_t per = dir_hash_pointers_per_block(vol_.bs);
  const uint64_t size = uint64_t{1} << dir_.d.dir_depth;
  // Block by block, stopping at the first pair that differs: in a directory whose leaves
  // are mostly as deep as the table, that is within the first few pointers.
  for (uint64_t t = 0; t * per < size; ++t) {
    LUNFS_ASSIGN(uint64_t phys, table_block(t));
    LUNFS_ASSIGN(auto hb, read_hash_block(phys, t, static_cast<uint32_t>(std::min<uint64_t>(per, size - t * per))));
    for (size_t i = 0; i + 1 < hb->leaves.size(); i += 2) {
      if (hb->leaves[i] != hb->leaves[i + 1]) return false;
    }
  }
  return true;
}

Status Directory::shrink_table() {
  for (;;) {
    LUNFS_ASSIGN(bool can_halve, table_can_halve());
    if (!can_halve) return Status::ok();
    LUNFS_ASSIGN(auto table, read_table());
    std::vector<uint64_t> smaller(table.size() / 2);
    for (uint64_t i = 0; i < smaller.size(); ++i) smaller[i] = table[2 * i];
    const uint32_t per = dir_hash_pointers_per_block(vol_.bs);
    LUNFS_TRY(free_table_blocks((smaller.size() + per - 1) / per));
    dir_.d.dir_depth -= 1;
    dir_.dirty(*txn_);
    LUNFS_TRY(write_table(smaller));
  }
}

}  // namespace lunfs

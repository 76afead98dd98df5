// Directory operations; see dir.h.
#include "fs/dir.h"

#include <algorithm>
#include <bit>
#include <tuple>

#include "fs/bmap.h"
#include "fs/volume.h"

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

}  // namespace

bool Directory::hashed() const { return dir_.d.flags & kInodeHashedDir; }

Result<std::vector<DirEntry>> Directory::inline_entries() {
  auto e = decode_dir_entries(dir_.d.content, dir_.d.dir_entries, vol_.sb.dir_hash_seed, vol_.g,
                              BlockType::kInode, dir_.ino());
  if (!e) vol_.log_line("lunfs: " + e.status().message());
  return e;
}

Result<DirLeaf> Directory::read_leaf(uint64_t blocknr) {
  auto img = txn_ ? txn_->read(blocknr) : vol_.cache.get(blocknr);
  if (!img) return img.status();
  auto leaf = decode_dir_leaf((*img)->span(), blocknr, vol_.sb.csum_seed, vol_.sb.dir_hash_seed, dir_.ino(), vol_.g);
  if (!leaf) vol_.log_line("lunfs: directory " + std::to_string(dir_.ino()) + ": " + leaf.status().message());
  return leaf;
}

void Directory::write_leaf(uint64_t blocknr, const DirLeaf& leaf) {
  auto img = txn_->new_block();
  encode_dir_leaf(leaf, img->span(), blocknr, txn_->sequence(), vol_.sb.csum_seed);
  txn_->put(blocknr, img);
}

Result<uint64_t> Directory::table_pointer(uint64_t index) {
  const uint32_t per = dir_hash_pointers_per_block(vol_.bs);
  const uint64_t t = index / per;
  ExtentTree tree(vol_, dir_, txn_);
  LUNFS_ASSIGN(auto ext, tree.find(t));
  if (!ext || ext->logical > t) {
    return error(EIO, "directory " + std::to_string(dir_.ino()) + ": hash table block " + std::to_string(t) + " missing");
  }
  uint64_t phys = ext->physical + (t - ext->logical);
  auto img = txn_ ? txn_->read(phys) : vol_.cache.get(phys);
  if (!img) return img.status();
  const uint64_t size = uint64_t{1} << dir_.d.dir_depth;
  const auto pointers = static_cast<uint32_t>(std::min<uint64_t>(per, size - t * per));
  auto hb = decode_dir_hash((*img)->span(), phys, vol_.sb.csum_seed, dir_.ino(), static_cast<uint32_t>(t),
                            pointers, vol_.g);
  if (!hb) {
    vol_.log_line("lunfs: directory " + std::to_string(dir_.ino()) + ": " + hb.status().message());
    return hb.status();
  }
  return hb->leaves[index % per];
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
    LUNFS_ASSIGN(BlockRef img, txn_ ? txn_->read(phys) : vol_.cache.get(phys));
    const auto pointers = static_cast<uint32_t>(std::min<uint64_t>(per, size - i));
    auto hb = decode_dir_hash(img->span(), phys, vol_.sb.csum_seed, dir_.ino(), static_cast<uint32_t>(i / per),
                              pointers, vol_.g);
    if (!hb) return hb.status();
    table.insert(table.end(), hb->leaves.begin(), hb->leaves.end());
  }
  return table;
}

Status Directory::write_table(const std::vector<uint64_t>& table) {
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
    auto img = txn_->new_block();
    encode_dir_hash(hb, img->span(), phys, txn_->sequence(), vol_.sb.csum_seed);
    txn_->put(phys, img);
  }
  return Status::ok();
}

Result<std::optional<DirEntry>> Directory::lookup(std::string_view name) {
  const uint32_t hash = dir_name_hash(vol_.sb.dir_hash_seed, name);
  std::vector<DirEntry> entries;
  if (hashed()) {
    LUNFS_ASSIGN(uint64_t leaf_block, table_pointer(slot_of(hash, dir_.d.dir_depth)));
    LUNFS_ASSIGN(DirLeaf leaf, read_leaf(leaf_block));
    entries = std::move(leaf.entries);
  } else {
    LUNFS_ASSIGN(entries, inline_entries());
  }
  for (auto& e : entries) {
    if (e.hash == hash && e.name == name) return std::optional<DirEntry>(std::move(e));
  }
  return std::optional<DirEntry>();
}

Status Directory::modify_inline(const std::function<Status(std::vector<DirEntry>&)>& fn) {
  LUNFS_ASSIGN(auto entries, inline_entries());
  LUNFS_TRY(fn(entries));
  dir_.d.content = encode_dir_entries(entries);
  dir_.d.dir_entries = entries.size();
  dir_.dirty(*txn_);
  return Status::ok();
}

Status Directory::modify_leaf(std::string_view name, const std::function<Status(std::vector<DirEntry>&)>& fn) {
  const uint32_t hash = dir_name_hash(vol_.sb.dir_hash_seed, name);
  LUNFS_ASSIGN(uint64_t leaf_block, table_pointer(slot_of(hash, dir_.d.dir_depth)));
  LUNFS_ASSIGN(DirLeaf leaf, read_leaf(leaf_block));
  size_t before = leaf.entries.size();
  LUNFS_TRY(fn(leaf.entries));
  dir_.d.dir_entries = dir_.d.dir_entries + leaf.entries.size() - before;
  write_leaf(leaf_block, leaf);
  dir_.dirty(*txn_);
  return Status::ok();
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
  for (int attempts = 0; attempts < 64; ++attempts) {
    uint64_t index = slot_of(e.hash, dir_.d.dir_depth);
    LUNFS_ASSIGN(uint64_t leaf_block, table_pointer(index));
    LUNFS_ASSIGN(DirLeaf leaf, read_leaf(leaf_block));
    if (bytes_of(leaf.entries) + e.encoded_size() <= dir_leaf_capacity_bytes(vol_.bs)) {
      return modify_leaf(name, insert_sorted);
    }
    if (leaf.depth < dir_.d.dir_depth) {
      LUNFS_TRY(split_leaf(index, leaf_block, leaf));
    } else if (dir_.d.dir_depth < kMaxDirDepth) {
      LUNFS_TRY(double_table());
    } else {
      return error(ENOSPC, "directory " + std::to_string(dir_.ino()) + ": hash leaf full at the maximum depth");
    }
  }
  return error(ENOSPC, "directory " + std::to_string(dir_.ino()) + ": too many names with one hash");
}

Status Directory::convert_to_hashed() {
  LUNFS_ASSIGN(auto entries, inline_entries());
  const uint32_t per = dir_hash_pointers_per_block(vol_.bs);
  const uint32_t depth = static_cast<uint32_t>(std::countr_zero(per));
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

Status Directory::split_leaf(uint64_t index, uint64_t leaf_block, DirLeaf& leaf) {
  const uint32_t depth = dir_.d.dir_depth;
  LUNFS_ASSIGN(Allocator::Run run, vol_.alloc.alloc_blocks(*txn_, leaf_block + 1, 1));
  dir_.d.blocks += 1;
  DirLeaf low, high;
  low.owner = high.owner = dir_.ino();
  low.depth = high.depth = static_cast<uint16_t>(leaf.depth + 1);
  low.hash_prefix = leaf.hash_prefix << 1;
  high.hash_prefix = (leaf.hash_prefix << 1) | 1;
  for (auto& e : leaf.entries) {
    bool upper = (e.hash >> (32 - low.depth)) & 1;
    (upper ? high : low).entries.push_back(std::move(e));
  }
  low.next = leaf.next;
  write_leaf(leaf_block, low);
  write_leaf(run.start, high);
  // The old leaf covered 2^(depth - leaf.depth) slots; the upper half now points at `high`.
  LUNFS_ASSIGN(auto table, read_table());
  uint64_t span = uint64_t{1} << (depth - leaf.depth);
  uint64_t first = index / span * span;
  for (uint64_t k = first + span / 2; k < first + span; ++k) table[k] = run.start;
  return write_table(table);
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

Status Directory::remove(std::string_view name) {
  const uint32_t hash = dir_name_hash(vol_.sb.dir_hash_seed, name);
  auto erase = [&](std::vector<DirEntry>& v) {
    auto it = std::find_if(v.begin(), v.end(), [&](const DirEntry& e) { return e.hash == hash && e.name == name; });
    if (it == v.end()) return error(ENOENT, std::string(name) + ": no such entry");
    v.erase(it);
    return Status::ok();
  };
  return hashed() ? modify_leaf(name, erase) : modify_inline(erase);
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
  return hashed() ? modify_leaf(name, change) : modify_inline(change);
}

Status Directory::list(uint64_t offset, const std::function<bool(const DirEntry&, uint64_t)>& fn) {
  auto emit = [&](const std::vector<DirEntry>& v, bool* stop) {
    for (size_t i = 0; i < v.size(); ++i) {
      uint64_t pos = position(v, i);
      if (pos + kFirstEntryOffset < offset) continue;
      if (!fn(v[i], pos + kFirstEntryOffset + 1)) {
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
  // One table lookup per leaf: a readdir call touches a few leaves, not the whole table.
  for (uint64_t i = slot_of(static_cast<uint32_t>(std::min<uint64_t>(start_hash, 0xFFFFFFFFu)), depth);
       i < table_size && !stop;) {
    LUNFS_ASSIGN(uint64_t leaf_block, table_pointer(i));
    LUNFS_ASSIGN(DirLeaf leaf, read_leaf(leaf_block));
    emit(leaf.entries, &stop);
    uint64_t span = uint64_t{1} << (depth - std::min<uint32_t>(leaf.depth, depth));
    i = (i / span + 1) * span;
  }
  return Status::ok();
}

Status Directory::release_blocks() {
  if (!hashed()) return Status::ok();
  LUNFS_ASSIGN(auto table, read_table());
  std::sort(table.begin(), table.end());
  table.erase(std::unique(table.begin(), table.end()), table.end());
  for (uint64_t leaf : table) {
    LUNFS_TRY(vol_.alloc.free_blocks(*txn_, leaf, 1));
    txn_->revoke(leaf);
    dir_.d.blocks -= 1;
  }
  ExtentTree tree(vol_, dir_, txn_);
  std::vector<Extent> freed;
  LUNFS_TRY(tree.remove(0, UINT64_MAX, &freed));
  for (const Extent& e : freed) {
    LUNFS_TRY(vol_.alloc.free_blocks(*txn_, e.physical, e.length));
    for (uint64_t b = e.physical; b < e.physical + e.length; ++b) txn_->revoke(b);
    dir_.d.blocks -= e.length;
  }
  LUNFS_TRY(tree.clear_nodes());
  return Status::ok();
}

}  // namespace lunfs

// fsck pass 4, directories: the entries of inline and hashed directories (hash table,
// leaves and their overflow chains), collected for pass 5.
#include "fsck/checker_state.h"

#include <tuple>
#include <unordered_set>

#include "fs/format/dir_format.h"

namespace lunfs::fsck {

using namespace ondisk;

void Checker::add_entries(uint64_t dir, const std::vector<DirEntry>& entries, bool unverified) {
  for (const auto& e : entries) entries_.push_back({dir, e.inode, e.type, e.name, unverified});
}

// The entries of an area that does not decode as a whole (a bad name, a wrong hash,
// entries out of order or misplaced, a bad count, a flipped bit) that stand on their own:
// the repair keeps those and drops only the rest. Where the packing breaks, the scan moves
// on byte by byte; an entry counts only when its stored hash matches its name, which
// garbage passes with a chance of 2^-32.
void Checker::salvage_entries(uint64_t dir, std::span<const uint8_t> raw, bool unverified) {
  const Geometry& g = report_.sb.geometry;
  auto bytes = std::as_bytes(raw);
  std::vector<DirEntry> out;
  for (size_t off = 0; raw.size() - off >= kDirEntryHeader;) {
    DirEntry e;
    e.inode = get<uint64_t>(bytes, off);
    e.hash = get<uint32_t>(bytes, off + 8);
    e.type = get<uint8_t>(bytes, off + 12);
    const size_t len = get<uint8_t>(bytes, off + 13);
    if (raw.size() - off - kDirEntryHeader >= len) {
      e.name.assign(reinterpret_cast<const char*>(raw.data() + off + kDirEntryHeader), len);
      if (valid_entry_name(e.name) && e.hash == dir_name_hash(report_.sb.dir_hash_seed, e.name) &&
          g.rgrp_of(e.inode) >= 0) {
        off += kDirEntryHeader + len;
        out.push_back(std::move(e));
        continue;
      }
    }
    ++off;
  }
  add_entries(dir, out, unverified);
}

// Hashed directory: table blocks through the extent map, then leaves and their chains.
uint64_t Checker::check_hashed_dir(uint64_t ino, const Inode& inode, const std::vector<Extent>& extents,
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
  // A leaf that cannot stand is reported, its entries salvaged, and the walk goes on at
  // the next slot that points elsewhere.
  auto skip = [&](uint64_t i) {
    const uint64_t leaf_block = table[i];
    while (i < table_size && table[i] == leaf_block) ++i;
    return i;
  };
  for (uint64_t i = 0; i < table_size;) {
    uint64_t leaf_block = table[i];
    if (leaves_seen.count(leaf_block)) {
      error(where + ": leaf " + n(leaf_block) + " is pointed at from separate hash-table slots");
      i = skip(i);
      continue;
    }
    if (!read_one(leaf_block, one, where + " leaf")) {
      i = skip(i);
      continue;
    }
    auto leaf = decode_dir_leaf(one.span(), leaf_block, report_.sb.csum_seed, report_.sb.dir_hash_seed, ino, g);
    if (!leaf) {
      error(where + ": " + leaf.status().message());
      // Even behind a failed checksum (a bit flip), a block that still says it is this
      // directory's leaf at this place gives up the entries whose hash matches their name.
      const BlockHeader h = peek_header(one.span());
      if (h.magic == kMagic && h.type == BlockType::kDirLeaf && h.blocknr == leaf_block &&
          get<uint64_t>(one.span(), 32) == ino) {
        leaves_seen.insert(leaf_block);
        refs_.push_back({leaf_block, 1, ino, "directory leaf"});
        // The whole entry area, not the damaged header's byte count: leaves are written
        // zero-filled, so nothing stale lies past the entries.
        salvage_entries(ino, std::span(reinterpret_cast<const uint8_t*>(one.data()) + kDirLeafEntriesOffset,
                                       bs() - kDirLeafEntriesOffset),
                        !verify_block(one.span(), BlockType::kDirLeaf, leaf_block, report_.sb.csum_seed));
      }
      i = skip(i);
      continue;
    }
    uint64_t span = uint64_t{1} << (inode.dir_depth - std::min<uint32_t>(leaf->depth, inode.dir_depth));
    uint64_t expected_prefix = leaf->depth == 0 ? 0 : i >> (inode.dir_depth - std::min<uint32_t>(leaf->depth, inode.dir_depth));
    bool misplaced = false;
    if (leaf->depth > inode.dir_depth) {
      error(where + ": leaf " + n(leaf_block) + " is deeper than the directory's hash table");
      misplaced = true;
    } else if (i % span != 0 || leaf->hash_prefix != expected_prefix) {
      error(where + ": leaf " + n(leaf_block) + " sits at hash-table slot " + n(i) +
            " but covers hash prefix " + n(leaf->hash_prefix) + " of depth " + n(leaf->depth));
      misplaced = true;
    }
    for (uint64_t k = i; !misplaced && k < i + span && k < table_size; ++k) {
      if (table[k] != leaf_block) {
        error(where + ": hash-table slots " + n(i) + ".." + n(i + span - 1) + " should all point at leaf " + n(leaf_block));
        misplaced = true;
      }
    }
    if (misplaced) {  // its entries are sound; the repair files them where they belong
      leaves_seen.insert(leaf_block);
      refs_.push_back({leaf_block, 1, ino, "directory leaf"});
      add_entries(ino, leaf->entries);
      i = skip(i);
      continue;
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

}  // namespace lunfs::fsck

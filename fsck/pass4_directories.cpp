// fsck pass 4, directories: the entries of inline and hashed directories (hash table,
// leaves and their overflow chains), collected for pass 5.
#include "fsck/checker_state.h"

#include <tuple>
#include <unordered_set>

#include "fs/format/dir_format.h"

namespace lunfs::fsck {

using namespace ondisk;

void Checker::add_entries(uint64_t dir, const std::vector<DirEntry>& entries) {
  for (const auto& e : entries) entries_.push_back({dir, e.inode, e.type, e.name});
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

}  // namespace lunfs::fsck

// Directory operations on one directory inode: lookup, add, remove, list, and the
// conversion from inline entries (in the inode) to a hashed directory (GFS2-style
// extendible hashing: a table of leaf pointers stored as the directory's logical blocks,
// leaves of entries sorted by (hash, name)). Full leaves split; when a leaf is already as
// deep as the table, the table doubles; when the table is as deep as it may grow
// (Volume::max_dir_depth), the leaf grows an overflow chain. Removals shrink chains and
// merge a leaf with its buddy when both fit in half a leaf; when no leaf is left as deep
// as the table, the table halves. readdir cookies are built from the name hash, so they
// stay valid while entries come and go.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "fs/format/dir_format.h"
#include "fs/core/inode.h"
#include "fs/core/transaction.h"

namespace lunfs {

struct Volume;

class Directory {
 public:
  Directory(Volume& vol, CoreInode& dir, Transaction* txn) : vol_(vol), dir_(dir), txn_(txn) {}

  // Reads and changes from now on go through `txn`. The bucket an earlier lookup()
  // decoded is still used: the caller has held the directory's glock exclusively since.
  void attach(Transaction* txn) { txn_ = txn; }

  Result<std::optional<ondisk::DirEntry>> lookup(std::string_view name);
  // Adds an entry whose name is not in the directory yet.
  Status add(std::string_view name, uint64_t inode, uint8_t type);
  // Removes `name`; ENOENT when absent.
  Status remove(std::string_view name);
  // Points the existing entry `name` at another inode (rename over a target).
  Status retarget(std::string_view name, uint64_t inode, uint8_t type);
  // Entries from readdir offset `offset` on; fn gets each entry and the offset of the
  // one after it, and returns false to stop. Offsets 0..2 are ".", ".." (the caller's).
  // A bucket that cannot be read (EIO) is skipped: fn still gets the entries of the
  // others, and a listing that reaches the end after (or resumed past) a skipped bucket
  // returns EIO.
  Status list(uint64_t offset, const std::function<bool(const ondisk::DirEntry&, uint64_t next)>& fn);
  // Frees the directory's blocks (leaves, hash table, tree nodes): rmdir of an empty dir.
  Status release_blocks();

  static constexpr uint64_t kFirstEntryOffset = 3;

 private:
  // The entries of one hash prefix: the leaf the table points at and its overflow chain,
  // entries in (hash, name) order across the whole chain.
  struct Bucket {
    std::vector<uint64_t> blocks;  // head first; empty for a bucket not written yet
    uint32_t hash_prefix = 0;
    uint16_t depth = 0;
    std::vector<ondisk::DirEntry> entries;
  };

  bool hashed() const;
  Result<uint64_t> table_block(uint64_t t);
  Result<uint64_t> table_pointer(uint64_t index);
  // Points table slots [first, first+count) at `leaf`, rewriting only the blocks they are in.
  Status set_pointers(uint64_t first, uint64_t count, uint64_t leaf);
  Status write_table(const std::vector<uint64_t>& table);
  Result<std::vector<uint64_t>> read_table();
  Result<ondisk::DirLeaf> read_leaf(uint64_t blocknr);
  // Block `t` of the hash table at `phys`, holding `pointers` pointers; shared with the
  // memo of decoded blocks (Volume::dir_hash_blocks).
  Result<std::shared_ptr<const ondisk::DirHashBlock>> read_hash_block(uint64_t phys, uint64_t t, uint32_t pointers);
  // Puts the encoded image of `hb` into the transaction and remembers its decode.
  void put_hash_block(uint64_t phys, const ondisk::DirHashBlock& hb);
  void write_leaf(uint64_t blocknr, const ondisk::DirLeaf& leaf);
  Result<Bucket> read_bucket(uint64_t head);
  Result<Bucket> bucket_of(uint32_t hash);
  // Packs the entries into the bucket's leaves in order, allocating leaves for a longer
  // chain and freeing the ones a shorter chain no longer needs.
  Status write_bucket(Bucket& b);
  size_t leaves_needed(const std::vector<ondisk::DirEntry>& entries) const;
  Status free_leaf(uint64_t blocknr);
  Status convert_to_hashed();
  Status split_bucket(uint64_t index, Bucket& b);
  Status double_table();
  // Merges `b` with its buddy while both are single leaves that fit in half a leaf;
  // true when it merged at least once.
  Result<bool> merge_up(Bucket b);
  // The table starts as one full block and never gets smaller than that.
  uint32_t min_table_depth() const;
  // True when every pair of buddy slots points at the same leaf (no leaf is as deep as
  // the table), so the table can halve.
  Result<bool> table_can_halve();
  // Halves the table (the inverse of double_table) while it can, freeing the table
  // blocks it no longer needs.
  Status shrink_table();
  // Unmaps and frees the directory's blocks from logical block `first` on.
  Status free_table_blocks(uint64_t first);
  Status modify_inline(const std::function<Status(std::vector<ondisk::DirEntry>&)>& fn);
  Status modify_bucket(std::string_view name, const std::function<Status(std::vector<ondisk::DirEntry>&)>& fn);
  Result<std::vector<ondisk::DirEntry>> inline_entries();

  Volume& vol_;
  CoreInode& dir_;
  Transaction* txn_;
  // The bucket lookup() just decoded, handed to the next read of the same bucket (create
  // looks a name up, then adds it: one decode instead of two). Any write drops it.
  std::optional<Bucket> looked_up_;
};

}  // namespace lunfs

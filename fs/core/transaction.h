// Transactions: the only way the core changes metadata. An operation opens a Transaction,
// reads blocks through it (seeing its own changes), records new sealed block images and
// the objects whose state it changed (inodes, resource groups, the statfs delta), and
// either commits — every participant encodes its blocks, the set goes to the MetadataLog
// as one transaction, and the images become the cache's clean copies — or is dropped, and
// every participant rolls its in-memory state back to the cached blocks.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "fs/core/block_cache.h"
#include "fs/core/glock.h"
#include "fs/metadata_log.h"

namespace lunfs {

class Transaction;

// An in-memory object that is encoded into blocks at commit (so that many changes to one
// inode or bitmap inside one operation cost one image) and restored on rollback.
class TxnParticipant {
 public:
  virtual ~TxnParticipant() = default;
  virtual void encode_into(Transaction& txn) = 0;
  virtual void rollback() = 0;
  // The log accepted the transaction as part of its transaction `log_sequence` (what
  // MetadataLog::submit returned).
  virtual void committed(uint64_t /*log_sequence*/) {}
};

class Transaction {
 public:
  Transaction(BlockCache& cache, MetadataLog& log, uint64_t sequence)
      : cache_(cache), log_(log), sequence_(sequence) {}
  Transaction(const Transaction&) = delete;
  ~Transaction();

  uint64_t sequence() const { return sequence_; }
  uint32_t block_size() const { return cache_.block_size(); }
  // The transaction's own image of `blocknr` if it wrote one, else the cached one.
  Result<BlockRef> read(uint64_t blocknr);
  // A fresh zeroed block buffer to encode into, then hand to put().
  std::shared_ptr<AlignedBuffer> new_block() const { return cache_.new_image(); }
  void put(uint64_t blocknr, std::shared_ptr<AlignedBuffer> image);
  // A metadata block freed by this transaction: its older logged images must not be
  // replayed, and the cache forgets it.
  void revoke(uint64_t blocknr);
  void join(TxnParticipant* p) { participants_.insert(p); }
  // Glocks taken for the transaction stay held until it ends (commit or rollback).
  bool holds(const GlockName& name) const { return glocks_.count(name) != 0; }
  void keep(const GlockName& name, GlockHolder holder) { glocks_.emplace(name, std::move(holder)); }
  bool empty() const { return images_.empty() && participants_.empty() && revokes_.empty(); }

  // Encodes the participants and submits everything to the log.
  Status commit();

 private:
  BlockCache& cache_;
  MetadataLog& log_;
  uint64_t sequence_;
  bool done_ = false;
  std::map<uint64_t, std::shared_ptr<AlignedBuffer>> images_;
  std::set<uint64_t> revokes_;
  std::set<TxnParticipant*> participants_;
  std::map<GlockName, GlockHolder> glocks_;  // declared last: released after rollback
};

}  // namespace lunfs

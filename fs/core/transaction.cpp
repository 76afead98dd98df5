// Transactions; see transaction.h.
#include "fs/core/transaction.h"

namespace lunfs {

Transaction::~Transaction() {
  if (done_) return;
  for (TxnParticipant* p : participants_) p->rollback();
}

Result<BlockRef> Transaction::read(uint64_t blocknr) {
  auto it = images_.find(blocknr);
  if (it != images_.end()) return BlockRef(it->second);
  return cache_.get(blocknr);
}

void Transaction::put(uint64_t blocknr, std::shared_ptr<AlignedBuffer> image) {
  revokes_.erase(blocknr);  // reused within the same transaction
  images_[blocknr] = std::move(image);
}

void Transaction::revoke(uint64_t blocknr) {
  images_.erase(blocknr);
  revokes_.insert(blocknr);
}

Status Transaction::commit() {
  // Encoding may add images (an inode's extent root is in its own block) but never joins
  // new participants, so one pass is enough.
  for (TxnParticipant* p : participants_) p->encode_into(*this);
  TransactionRecord rec;
  for (auto& [nr, img] : images_) rec.blocks.push_back({nr, img});
  rec.revokes.assign(revokes_.begin(), revokes_.end());
  done_ = true;
  if (rec.blocks.empty() && rec.revokes.empty()) return Status::ok();
  for (uint64_t nr : revokes_) cache_.drop(nr);
  auto seq = log_.submit(std::move(rec));
  if (!seq) {
    // The log refused the transaction: nothing of it is on disk, so the in-memory state
    // must not keep it either.
    for (TxnParticipant* p : participants_) p->rollback();
    return seq.status();
  }
  for (auto& [nr, img] : images_) cache_.put(nr, img);
  for (TxnParticipant* p : participants_) p->committed(*seq);
  return Status::ok();
}

}  // namespace lunfs

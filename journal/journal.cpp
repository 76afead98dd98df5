// Journal: opening after replay, submit (group commit into the running transaction),
// commit, lookup and the commit timer. Checkpointing is in checkpoint.cpp.
#include "journal/journal.h"

#include <algorithm>
#include <cstring>

#include "journal/log_writer.h"
#include "journal/slot_tail.h"

namespace lunfs::journal {

uint64_t Journal::Txn::log_blocks(uint32_t block_size) const {
  return transaction_blocks(images.size(), revokes.size(), block_size);
}

Result<std::unique_ptr<Journal>> Journal::open(BlockDevice& dev, const ondisk::Superblock& sb,
                                               uint32_t slot, JournalOptions options) {
  LUNFS_ASSIGN(ReplayReport report, replay(dev, sb, slot));
  if (report.end == LogEnd::kDamaged) {
    return error(EIO, "journal of slot " + std::to_string(slot) + " is damaged: " +
                          report.end_reason + "; run fsck.lunfs");
  }
  LUNFS_ASSIGN(ondisk::SlotHeader header, read_slot_header(dev, sb, slot));
  std::unique_ptr<Journal> j(new Journal(dev, sb, slot, options));
  j->replay_report_ = std::move(report);
  j->slot_header_ = header;
  j->head_ = j->tail_ = header.tail_block;
  j->running_.sequence = header.tail_sequence;
  j->durable_sequence_ = header.tail_sequence - 1;
  if (options.commit_interval.count() > 0) j->timer_ = std::thread([p = j.get()] { p->timer_loop(); });
  return j;
}

Journal::Journal(BlockDevice& dev, const ondisk::Superblock& sb, uint32_t slot,
                 JournalOptions options)
    : dev_(dev),
      sb_(sb),
      area_(JournalArea::of(sb, slot)),
      options_(options),
      max_txn_blocks_(std::min<uint64_t>(
          options.max_transaction_blocks ? options.max_transaction_blocks : area_.blocks / 4,
          area_.blocks)) {}

Journal::~Journal() {
  {
    std::lock_guard lock(timer_mu_);
    stopping_ = true;
  }
  timer_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
}

void Journal::timer_loop() {
  std::unique_lock lock(timer_mu_);
  while (!stopping_) {
    if (timer_cv_.wait_for(lock, options_.commit_interval, [&] { return stopping_; })) break;
    lock.unlock();
    (void)commit();  // a failure aborts the journal; callers see it on their next call
    lock.lock();
  }
}

Status Journal::fail(Status st) {
  std::lock_guard lock(state_mu_);
  if (!failed_) {
    failed_ = error(st.err() ? st.err() : EIO, "journal of slot " + std::to_string(area_.id.slot) +
                                                   " aborted: " + st.message());
  }
  committed_cv_.notify_all();
  return *failed_;
}

Status Journal::validate(const TransactionRecord& txn) const {
  const ondisk::Geometry& g = sb_.geometry;
  for (const BlockImage& b : txn.blocks) {
    if (!b.data || b.data->size() != g.block_size) {
      return error(EINVAL, "image of block " + std::to_string(b.blocknr) + " is not one block");
    }
    if (b.blocknr >= g.block_count || JournalArea::in_journals(g, b.blocknr)) {
      return error(EINVAL, "image for block " + std::to_string(b.blocknr) +
                               ", which is outside the device or inside a journal");
    }
  }
  for (uint64_t b : txn.revokes) {
    if (b >= g.block_count) return error(EINVAL, "revoke of block " + std::to_string(b) + " beyond the device");
  }
  if (transaction_blocks(txn.blocks.size(), txn.revokes.size(), g.block_size) > max_txn_blocks_) {
    return error(EFBIG, "transaction of " + std::to_string(txn.blocks.size()) +
                            " blocks is larger than the journal allows");
  }
  return Status::ok();
}

Result<uint64_t> Journal::submit(TransactionRecord txn) {
  LUNFS_TRY(validate(txn));
  for (;;) {
    {
      std::lock_guard lock(state_mu_);
      if (failed_) return *failed_;
      // Bound from above: the merge can only shrink it.
      const uint64_t after = transaction_blocks(running_.images.size() + txn.blocks.size(),
                                                running_.revokes.size() + txn.revokes.size(),
                                                area_.block_size);
      if (after <= max_txn_blocks_ || running_.empty()) {
        // Later operations win: a revoke cancels an earlier image of this transaction, an
        // image of a reused block cancels its earlier revoke.
        for (uint64_t b : txn.revokes) {
          running_.images.erase(b);
          running_.revokes.insert(b);
        }
        for (BlockImage& b : txn.blocks) {
          running_.revokes.erase(b.blocknr);
          running_.images[b.blocknr] = std::move(b.data);
        }
        return running_.sequence;
      }
    }
    LUNFS_TRY(commit());  // the running transaction is full: commit it and start a new one
  }
}

Status Journal::commit() {
  // Group commit: wait only for the transaction holding what was submitted before this
  // call. One caller at a time writes (the "writer"); the others sleep until a commit
  // completes and find their work durable, so everything submitted while a commit is in
  // flight goes out together in the next one.
  std::unique_lock lock(state_mu_);
  if (failed_) return *failed_;
  const uint64_t needed = !running_.empty() ? running_.sequence
                          : committing_     ? committing_->sequence
                                            : 0;  // sequences start at 1: nothing pending
  while (durable_sequence_ < needed) {
    if (failed_) return *failed_;
    if (writer_active_) {
      committed_cv_.wait(lock);
      continue;
    }
    writer_active_ = true;
    lock.unlock();
    Status st;
    {
      std::lock_guard io(commit_mu_);
      st = commit_locked();
    }
    lock.lock();
    writer_active_ = false;
    committed_cv_.notify_all();
    if (!st) return st;
  }
  return Status::ok();
}

Status Journal::commit_locked() {
  std::shared_ptr<Txn> txn;
  {
    std::lock_guard lock(state_mu_);
    if (failed_) return *failed_;
    if (running_.empty()) return Status::ok();
    txn = std::make_shared<Txn>(std::move(running_));
    running_ = Txn{};
    running_.sequence = txn->sequence + 1;
    committing_ = txn;
  }
  const uint64_t need = txn->log_blocks(area_.block_size);
  if (need > area_.blocks - (head_ - tail_)) LUNFS_TRY(checkpoint_locked());

  std::vector<BlockImage> images;
  images.reserve(txn->images.size());
  for (const auto& [blocknr, data] : txn->images) images.push_back({blocknr, data});
  std::vector<uint64_t> revokes(txn->revokes.begin(), txn->revokes.end());
  if (auto st = write_transaction(dev_, area_, head_, txn->sequence, images, revokes); !st) {
    return fail(st);
  }

  std::lock_guard lock(state_mu_);
  for (const auto& [blocknr, data] : txn->images) logged_[blocknr] = data;
  for (uint64_t b : txn->revokes) logged_.erase(b);
  committing_.reset();
  durable_sequence_ = txn->sequence;
  committed_cv_.notify_all();
  head_ += need;
  stats_.commits += 1;
  stats_.log_blocks += need;
  return Status::ok();
}

uint64_t Journal::durable_sequence() const {
  std::lock_guard lock(state_mu_);
  return durable_sequence_;
}

bool Journal::lookup(uint64_t blocknr, std::span<std::byte> out) {
  std::lock_guard lock(state_mu_);
  auto copy = [&](const std::shared_ptr<const AlignedBuffer>& data) {
    std::memcpy(out.data(), data->data(), std::min(out.size(), data->size()));
    return true;
  };
  // Newest first: running, then the one being written, then the committed log.
  for (const Txn* t : {static_cast<const Txn*>(&running_), committing_.get()}) {
    if (!t) continue;
    if (auto it = t->images.find(blocknr); it != t->images.end()) return copy(it->second);
    if (t->revokes.count(blocknr)) return false;
  }
  if (auto it = logged_.find(blocknr); it != logged_.end()) return copy(it->second);
  return false;
}

JournalStats Journal::stats() const {
  std::lock_guard lock(state_mu_);
  return stats_;
}

}  // namespace lunfs::journal

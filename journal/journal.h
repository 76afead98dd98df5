// Journal: the per-slot write-ahead log behind MetadataLog. Submitted transactions join the
// running transaction (group commit); commit() writes it to the circular log and returns
// when it is durable; a timer commits every `commit_interval`; checkpoints write logged
// images home and advance the tail so the log never wedges. Thread-safe.
//
// Rules for the caller (the core), relied on for crash consistency:
//  - ordered data: data writes of extents a transaction allocates complete before submit;
//  - a block freed by a transaction (revoked) is not reused before durable_sequence()
//    reaches that transaction's sequence, so a checkpoint never writes an old image over
//    new contents.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "fs/metadata_log.h"
#include "fs/format/slot_format.h"
#include "fs/format/superblock.h"
#include "journal/area.h"
#include "journal/replay.h"

namespace lunfs::journal {

struct JournalOptions {
  // Timer commit (mount option commit=<seconds>); zero disables the timer.
  std::chrono::milliseconds commit_interval{5000};
  // The running transaction is committed before it grows beyond this many log blocks;
  // 0 means a quarter of the journal.
  uint32_t max_transaction_blocks = 0;
};

struct JournalStats {
  uint64_t commits = 0;      // transactions written to the log
  uint64_t checkpoints = 0;
  uint64_t log_blocks = 0;   // blocks written to the log
};

class Journal final : public MetadataLog {
 public:
  // Replays the slot's journal, then opens it for appending after the replayed log. Refuses
  // (EIO, in words) when the log is damaged or the slot header unreadable.
  static Result<std::unique_ptr<Journal>> open(BlockDevice& dev, const ondisk::Superblock& sb,
                                               uint32_t slot, JournalOptions options = {});
  // Stops the timer. Does not commit: unmount calls checkpoint() first.
  ~Journal() override;

  Result<uint64_t> submit(TransactionRecord txn) override;
  Status commit() override;
  uint64_t durable_sequence() const override;
  bool lookup(uint64_t blocknr, std::span<std::byte> out) override;
  Status checkpoint() override;

  const ReplayReport& replay_report() const { return replay_report_; }
  JournalStats stats() const;

 private:
  // Images and revokes gathered from submitted records, newest wins.
  struct Txn {
    uint64_t sequence = 0;
    std::map<uint64_t, std::shared_ptr<const AlignedBuffer>> images;
    std::set<uint64_t> revokes;
    bool empty() const { return images.empty() && revokes.empty(); }
    uint64_t log_blocks(uint32_t block_size) const;
  };

  Journal(BlockDevice& dev, const ondisk::Superblock& sb, uint32_t slot, JournalOptions options);
  Status validate(const TransactionRecord& txn) const;
  Status commit_locked();      // needs commit_mu_
  Status checkpoint_locked();  // needs commit_mu_
  Status write_home(const std::map<uint64_t, std::shared_ptr<const AlignedBuffer>>& images);
  Status fail(Status st);      // aborts the journal: every later call returns the error
  void timer_loop();

  BlockDevice& dev_;
  const ondisk::Superblock sb_;
  const JournalArea area_;
  const JournalOptions options_;
  const uint64_t max_txn_blocks_;
  ReplayReport replay_report_;

  // Lock order: commit_mu_ before state_mu_. commit_mu_ serialises log I/O (commits and
  // checkpoints); state_mu_ guards the in-memory transaction state and is never held
  // across I/O, so submit and lookup do not wait for the disk.
  std::mutex commit_mu_;
  mutable std::mutex state_mu_;
  Txn running_;
  std::shared_ptr<const Txn> committing_;  // being written; still visible to lookup
  std::map<uint64_t, std::shared_ptr<const AlignedBuffer>> logged_;  // committed, not home yet
  uint64_t durable_sequence_ = 0;  // newest transaction whose commit is durable
  bool writer_active_ = false;     // a commit() caller is writing; the others wait
  std::condition_variable committed_cv_;  // signalled when a commit completes or fails
  uint64_t head_ = 0;  // log offsets (positions before wrapping); used = head_ - tail_
  uint64_t tail_ = 0;
  ondisk::SlotHeader slot_header_;
  std::optional<Status> failed_;
  JournalStats stats_;

  std::mutex timer_mu_;
  std::condition_variable timer_cv_;
  bool stopping_ = false;
  std::thread timer_;
};

}  // namespace lunfs::journal

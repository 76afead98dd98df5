// Checkpoint: write every committed image home, flush, then move the tail in the slot
// header to the head and flush again. Until the new tail is durable, replay still finds
// (and rewrites) the same images, so a crash anywhere in a checkpoint loses nothing.
#include "journal/journal.h"

#include <algorithm>

#include "journal/slot_tail.h"

namespace lunfs::journal {

Status Journal::checkpoint() {
  std::lock_guard lock(commit_mu_);
  LUNFS_TRY(commit_locked());
  return checkpoint_locked();
}

// Writes the images home in block order, runs of consecutive blocks in one write (an
// allocation's bitmap blocks, a directory's leaves, an inode table area).
Status Journal::write_home(const std::map<uint64_t, std::shared_ptr<const AlignedBuffer>>& images) {
  constexpr uint64_t kMaxRun = 256;
  const uint32_t bs = area_.block_size;
  AlignedBuffer run(std::min<uint64_t>(kMaxRun, images.size()) * bs);
  uint64_t first = 0, count = 0;
  for (auto it = images.begin(); it != images.end(); ++it) {
    if (count == 0) first = it->first;
    std::copy_n(it->second->data(), bs, run.data() + count * bs);
    ++count;
    auto next = std::next(it);
    if (next == images.end() || next->first != first + count || count == kMaxRun) {
      LUNFS_TRY(dev_.write(first * bs, run.span().first(count * bs)));
      count = 0;
    }
  }
  return Status::ok();
}

Status Journal::checkpoint_locked() {
  std::map<uint64_t, std::shared_ptr<const AlignedBuffer>> images;
  {
    std::lock_guard lock(state_mu_);
    if (failed_) return *failed_;
    // Nothing committed since the last checkpoint: home and the slot header are already up
    // to date. Every glock demote checkpoints, and unmount demotes every cached glock, so
    // without this a clean log would cost two flushes per cached inode.
    if (logged_.empty() && tail_ == head_) return Status::ok();
    images = logged_;  // stable: only commits change it, and we hold commit_mu_
  }
  if (auto st = write_home(images); !st) return fail(st);
  if (auto st = dev_.flush(); !st) return fail(st);
  ondisk::SlotHeader header = slot_header_;
  header.tail_block = area_.wrap(head_);
  {
    std::lock_guard lock(state_mu_);
    // The next transaction written to the log: the one being committed, if any.
    header.tail_sequence = committing_ ? committing_->sequence : running_.sequence;
  }
  if (auto st = write_slot_header(dev_, sb_, header); !st) return fail(st);
  if (auto st = dev_.flush(); !st) return fail(st);

  std::lock_guard lock(state_mu_);
  slot_header_ = header;
  logged_.clear();
  tail_ = head_;
  stats_.checkpoints += 1;
  return Status::ok();
}

}  // namespace lunfs::journal

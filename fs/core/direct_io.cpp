// The asynchronous data path (FileSystem::read_async / write_async). A request that only
// moves data between a buffer and blocks that are already mapped — a block-aligned read, or
// an overwrite of written blocks inside the file, which is every request of a preallocated
// VM image — is planned under the metadata mutex, handed to the device's IoQueue, and
// answered from the queue's completion thread. So is a whole-block write that allocates (a
// thin image's first pass): its first transaction maps the range unwritten before the
// submit, and its second, which marks the range written, runs on the completion thread
// once the data is on the device. Until the answer the request pins the inode's glock
// (glock.h: GlockPin) so that truncate, punch and demotes wait for the transfer, and
// owns a pooled buffer: FUSE's own buffer goes back to libfuse when the handler returns.
// Every other request runs the synchronous read()/write() on the caller's thread.
#include <cstring>
#include <functional>

#include "fs/core/bmap.h"
#include "fs/core/filesystem.h"
#include "fs/core/volume.h"

namespace lunfs {

using namespace ondisk;

namespace {

// What an allocating write must have done once its data is on the device (its second
// transaction), given whom to tell when that is done.
using AfterData = std::function<void(std::function<void(Status)> then)>;

// A transfer in flight: the glock pin, the buffer, the after-data step, and whom to tell.
// Deletes itself when done.
template <typename Completion>
class DirectTransfer final : public IoCompletion {
 public:
  DirectTransfer(GlockPin pin, BufferPool::Lease buffer, size_t length, Completion done, AfterData after_data = {})
      : pin_(std::move(pin)),
        buffer_(std::move(buffer)),
        length_(length),
        done_(std::move(done)),
        after_data_(std::move(after_data)) {}

  std::span<std::byte> buffer() { return buffer_.span(); }

  void io_done(Status status) override {
    // Still pinned until the step is done: truncate and punch wait until the mapping is final.
    if (status && after_data_) return after_data_([this](Status st) { finish(std::move(st)); });
    finish(std::move(status));
  }

 private:
  void finish(Status status) {
    pin_.release();  // the blocks are no longer in use: truncate may go on
    if (!status) {
      done_(status);
    } else if constexpr (std::is_same_v<Completion, FileSystem::ReadCompletion>) {
      done_(std::span<const std::byte>(buffer_.span().first(length_)));
    } else {
      done_(length_);
    }
    delete this;
  }

  GlockPin pin_;
  BufferPool::Lease buffer_;
  const size_t length_;
  Completion done_;
  AfterData after_data_;
};

using DirectRead = DirectTransfer<FileSystem::ReadCompletion>;
using DirectWrite = DirectTransfer<FileSystem::WriteCompletion>;

// A read's reply carries its data, and copying it into the kernel is the main cost of a
// large read: the one completion thread would serialise those copies (1 MiB reads at
// QD16 fell from 1.04x raw to 0.65x), so large reads stay on the session threads, which
// copy in parallel. Small reads are latency-bound: for them the queue depth matters.
constexpr size_t kLargestAsyncRead = 128 << 10;

// The most second transactions made one: as many as the AIO queue reaps at once. A larger
// set than the journal takes (EFBIG) falls back to one transaction each.
constexpr size_t kMostWritesFinishedTogether = 64;

}  // namespace

IoQueue& FileSystem::io_queue() {
  std::call_once(vol_->io_once, [this] {
    vol_->io = vol_->dev.make_io_queue();
    vol_->io->set_reap_hook([this] { finish_reaped_writes(); });
  });
  return *vol_->io;
}

void FileSystem::finish_reaped_writes() {
  // Each second transaction alone took meta_mu from the session threads' first
  // transactions once per write, and the hand-overs, not the work, dominated a thin
  // image's first pass (docs/performance.md). Together they cost one acquisition, one
  // commit, and one encode of each extent leaf and inode they share. The data of all of
  // them is on the device, so the ordered-data rule holds for the joint transaction.
  for (;;) {
    std::vector<FinishingWrite> batch;
    {
      std::lock_guard lock(finishing_mu_);
      if (finishing_.empty()) return;
      const auto n = static_cast<ptrdiff_t>(std::min(finishing_.size(), kMostWritesFinishedTogether));
      batch.assign(std::make_move_iterator(finishing_.begin()), std::make_move_iterator(finishing_.begin() + n));
      finishing_.erase(finishing_.begin(), finishing_.begin() + n);
    }
    auto finish = [this](std::span<const FinishingWrite> writes) {
      return retrying([&]() -> Status {
        std::lock_guard lock(vol_->meta_mu);
        auto txn = vol_->begin();
        for (const FinishingWrite& w : writes) LUNFS_TRY(finish_write(*txn, *w.node, w.first, w.count, w.end));
        return txn->commit();
      });
    };
    Status together = finish(batch);
    for (FinishingWrite& w : batch) {
      // A failure (a damaged leaf, no room for a split, a set too large for the journal)
      // rolled the joint transaction back: each alone then, so each write reports its own.
      w.then(together || batch.size() == 1 ? together : finish(std::span(&w, 1)));
    }
  }
}

void FileSystem::drain_io() {
  // Callers run when no request can start any more (the session threads have ended).
  if (vol_->io) vol_->io->drain();
}

void FileSystem::read_async(uint64_t ino, uint64_t offset, size_t size, ReadCompletion done, bool direct) {
  auto gl = vol_->glocks.lock({GlockType::kInode, ino}, read_mode(direct));
  if (!gl) return done(gl.status());
  const uint32_t bs = vol_->bs;
  DirectRead* op = nullptr;
  std::vector<IoTransfer> reads;
  {
    std::lock_guard lock(vol_->meta_mu);
    auto node = inode(ino);
    const bool mapped = node && (*node)->is_reg() && ((*node)->d.flags & kInodeExtents) &&
                        !((*node)->d.flags & kInodeInlineData);
    if (mapped && size > 0 && size <= kLargestAsyncRead && offset % bs == 0 && offset < (*node)->d.size) {
      const size_t length = static_cast<size_t>(std::min<uint64_t>(size, (*node)->d.size - offset));
      const uint64_t nblocks = (length + bs - 1) / bs;
      ExtentTree tree(*vol_, **node, nullptr);
      if (auto segs = tree.map_range(offset / bs, nblocks)) {
        op = new DirectRead(gl->pin(), vol_->buffers.get(nblocks * bs), length, std::move(done));
        reads = device_reads(*segs, offset / bs, bs, op->buffer());
        note_access(**node);
      }
    }
  }
  gl->unlock();
  if (op) return io_queue().submit(reads, *op);
  // Not a small mapped read (large, inline data, unaligned, damage...): the synchronous
  // path, which also reports any error with its block.
  BufferPool::Lease buffer = vol_->buffers.get(size);
  auto n = read(ino, offset, buffer.span(), direct);
  if (!n) return done(n.status());
  touch_atime(ino);
  done(std::span<const std::byte>(buffer.span().first(*n)));
}

void FileSystem::write_async(uint64_t ino, uint64_t offset, std::span<const std::byte> data, WriteCompletion done,
                             bool direct) {
  const uint32_t bs = vol_->bs;
  // Overwrites of written blocks need no metadata. Other whole-block writes (a thin image's
  // first pass) run their first transaction here and their second when the data is on the
  // device (file_io.cpp), so neither holds this thread while the LUN works. Everything
  // else (partial blocks, inline data, errors to report) takes the synchronous path.
  // Glock modes as write(): deferred for a direct overwrite, else exclusive (locally shared).
  GlockMode mode = direct ? GlockMode::kDeferred : GlockMode::kExclusive;
  std::vector<Segment> segs;
  std::shared_ptr<CoreInode> allocating;
  GlockHolder gl;
  for (;;) {
    auto locked = vol_->glocks.lock({GlockType::kInode, ino}, mode, kLocalShared);
    if (!locked) return done(locked.status());
    gl = std::move(*locked);
    if (!vol_->check_writable() || data.empty()) break;
    enum { kDone, kNeedExclusive, kNeedRgrp } next = kDone;
    {
      std::lock_guard lock(vol_->meta_mu);
      const bool whole_blocks = offset % bs == 0 && data.size() % bs == 0 && offset <= max_file_size() &&
                                data.size() <= max_file_size() - offset;
      auto node = regular_file(ino);
      auto plan = node ? plan_overwrite(**node, offset, data.size()) : node.status();
      if (plan && *plan) {
        segs = std::move(**plan);
      } else if (plan && whole_blocks && !writes_inline(**node, offset + data.size())) {
        if (mode != GlockMode::kExclusive) {
          next = kNeedExclusive;  // it allocates or converts after all
        } else if (auto mapped = map_for_write(**node, offset / bs, data.size() / bs)) {
          segs = std::move(*mapped);
          allocating = *node;
        } else if (mapped.err() == kGlockRetry) {
          next = kNeedRgrp;
        } else {
          gl.unlock();
          return done(mapped.status());
        }
      }
    }
    if (next == kDone) break;
    gl.unlock();
    if (next == kNeedExclusive) {
      mode = GlockMode::kExclusive;
    } else if (auto st = acquire_wanted_glock(); !st) {
      return done(st);
    }
  }
  if (segs.empty()) {
    gl.unlock();
    return done(write(ino, offset, data, direct));
  }
  AfterData after_data;
  if (allocating) {
    // Left for the reap hook (finish_reaped_writes) on the completing thread, with the glock
    // pinned: an rgrp glock the second transaction needs is waited for there (the pin holds
    // no meta_mu and no holder).
    after_data = [this, node = std::move(allocating), first = offset / bs, count = data.size() / bs,
                  end = offset + data.size()](std::function<void(Status)> then) {
      std::lock_guard lock(finishing_mu_);
      finishing_.push_back({node, first, count, end, std::move(then)});
    };
  }
  auto* op = new DirectWrite(gl.pin(), vol_->buffers.get(data.size()), data.size(), std::move(done),
                             std::move(after_data));
  gl.unlock();
  std::memcpy(op->buffer().data(), data.data(), data.size());
  io_queue().submit(device_writes(segs, offset / bs, bs, op->buffer()), *op);
}

}  // namespace lunfs

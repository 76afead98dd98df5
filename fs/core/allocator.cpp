// Resource-group allocator; see allocator.h.
#include "fs/core/allocator.h"

#include <algorithm>
#include <cstring>
#include <optional>

namespace lunfs {

using namespace ondisk;

namespace {
constexpr unsigned bit(BlockState s) { return 1u << static_cast<unsigned>(s); }

// True when none of the 32 two-bit block states in `word` is kFree (0).
constexpr bool no_free_state(uint64_t word) {
  constexpr uint64_t kLowBits = 0x5555555555555555ull;
  return ((word | word >> 1) & kLowBits) == kLowBits;
}
// The rgrp glock the calling thread's operation failed to take (lock_rgrp).
thread_local std::optional<GlockName> t_wanted_rgrp;
}  // namespace

std::optional<GlockName> Allocator::take_wanted_glock() {
  std::optional<GlockName> out;
  out.swap(t_wanted_rgrp);
  return out;
}

void Allocator::Rgrp::set(uint32_t i, BlockState s) {
  uint8_t& byte = bits[i / 4];
  byte = static_cast<uint8_t>((byte & ~(3u << (i % 4 * 2))) | (static_cast<unsigned>(s) << (i % 4 * 2)));
}

void Allocator::Rgrp::pin(uint32_t i, bool on) {
  if (pinned.empty()) pinned.assign((loc.data_blocks + 63) / 64, 0);
  const uint64_t mask = uint64_t{1} << (i % 64);
  if (on) {
    pinned[i / 64] |= mask;
    ++pinned_count;
  } else {
    pinned[i / 64] &= ~mask;
    --pinned_count;
  }
}

Allocator::Allocator(const Superblock& sb, BlockCache& cache, MetadataLog& log, GlockTable& glocks,
                     uint32_t slot, std::function<void(const std::string&)> withdraw)
    : sb_(sb), g_(sb.geometry), cache_(cache), log_(log), glocks_(glocks), slot_(slot),
      withdraw_(std::move(withdraw)) {}

Status Allocator::damaged(Rgrp& r, const Status& why) {
  r.damaged = true;
  withdraw_("resource group " + std::to_string(r.loc.index) + ": " + why.message());
  return error(EIO, why.message());
}

Status Allocator::read_header(Rgrp& r) {
  auto img = cache_.get(r.loc.header);
  if (!img) return damaged(r, img.status());
  auto h = decode_rgrp_header((*img)->span(), r.loc.header, sb_.csum_seed, r.loc);
  if (!h) return damaged(r, h.status());
  r.header = *h;
  r.damaged = false;
  return Status::ok();
}

Status Allocator::load() {
  rgrps_.resize(g_.rgrp_count);
  for (uint32_t i = 0; i < g_.rgrp_count; ++i) {
    rgrps_[i].loc = g_.rgrp(i);
    // A damaged rgrp is withdrawn from use but does not fail the mount: read-only access
    // to files elsewhere stays possible.
    (void)read_header(rgrps_[i]);
  }
  auto img = cache_.get(g_.statfs_delta(slot_));
  if (!img) return img.status();
  auto d = decode_statfs((*img)->span(), g_.statfs_delta(slot_), sb_.csum_seed, g_);
  if (!d) {
    withdraw_("statfs delta of slot " + std::to_string(slot_) + ": " + d.status().message());
    return d.status();
  }
  delta_ = *d;
  return Status::ok();
}

Status Allocator::refresh(Rgrp& r) {
  // Images cached before this node held the glock (at mount) may be old.
  for (uint64_t b = r.loc.header; b <= r.loc.header + r.loc.bitmap_blocks; ++b) cache_.drop(b);
  r.loaded = false;
  LUNFS_TRY(read_header(r));
  r.stale = false;
  return Status::ok();
}

void Allocator::invalidate(uint32_t index) {
  Rgrp& r = rgrps_.at(index);
  for (uint64_t b = r.loc.header; b <= r.loc.header + r.loc.bitmap_blocks; ++b) cache_.drop(b);
  r.stale = true;
  r.loaded = false;
  r.bits.clear();
  release_durable();
}

Result<RgrpHeader> Allocator::header_on_disk(const Rgrp& r) {
  LUNFS_ASSIGN(auto img, cache_.read_uncached(r.loc.header));
  return decode_rgrp_header(img->span(), r.loc.header, sb_.csum_seed, r.loc);
}

Result<BlockState> Allocator::state_on_disk(const Rgrp& r, uint32_t i) {
  LUNFS_ASSIGN(RgrpHeader h, header_on_disk(r));
  if (h.flags & kRgrpBitmapUninit) return BlockState::kFree;
  const uint32_t per = Geometry::blocks_per_bitmap(g_.block_size);
  const uint32_t b = i / per;
  const uint64_t nr = r.loc.header + 1 + b;
  LUNFS_ASSIGN(auto img, cache_.read_uncached(nr));
  LUNFS_ASSIGN(auto bm, decode_bitmap(img->span(), nr, sb_.csum_seed, r.loc, b,
                                      std::min<uint32_t>(per, r.loc.data_blocks - b * per)));
  const uint32_t j = i % per;
  return static_cast<BlockState>((bm.bits[j / 4] >> (j % 4 * 2)) & 3);
}

Status Allocator::load_bitmaps(Rgrp& r) {
  if (r.stale) LUNFS_TRY(refresh(r));
  if (r.loaded) return Status::ok();
  if (r.damaged) return error(EIO, "resource group " + std::to_string(r.loc.index) + " is damaged");
  const uint32_t per = Geometry::blocks_per_bitmap(g_.block_size);
  r.bits.assign(uint64_t{r.loc.bitmap_blocks} * per / 4, 0);
  if (!(r.header.flags & kRgrpBitmapUninit)) {
    for (uint32_t b = 0; b < r.loc.bitmap_blocks; ++b) {
      uint64_t nr = r.loc.header + 1 + b;
      auto img = cache_.get(nr);
      if (!img) return damaged(r, img.status());
      uint32_t covered = std::min<uint32_t>(per, r.loc.data_blocks - b * per);
      auto bm = decode_bitmap((*img)->span(), nr, sb_.csum_seed, r.loc, b, covered);
      if (!bm) return damaged(r, bm.status());
      std::copy(bm->bits.begin(), bm->bits.begin() + per / 4, r.bits.begin() + uint64_t{b} * (per / 4));
    }
    uint32_t counts[4] = {};
    for (uint32_t j = 0; j < r.loc.data_blocks; ++j) ++counts[static_cast<int>(r.state(j))];
    if (counts[0] != r.header.free_blocks || counts[3] != r.header.dinodes || counts[2] != r.header.unlinked) {
      return damaged(r, error(EIO, "header counts disagree with the bitmap"));
    }
  }
  r.loaded = true;
  return Status::ok();
}

Status Allocator::lock_rgrp(Transaction& txn, uint32_t index) {
  GlockName name{GlockType::kRgrp, index};
  if (txn.holds(name)) return Status::ok();
  // Under meta_mu: never wait (glock.h, rule 2). A miss sends the operation round again
  // (FileSystem::retrying) after it has taken the glock with nothing else held.
  auto holder = glocks_.try_lock(name, GlockMode::kExclusive);
  if (!holder) {
    t_wanted_rgrp = name;
    return holder.status();
  }
  txn.keep(name, std::move(*holder));
  return Status::ok();
}

void Allocator::touch(Transaction& txn, Rgrp& r, uint32_t first, uint32_t last) {
  const uint32_t per = Geometry::blocks_per_bitmap(g_.block_size);
  if (r.header.flags & kRgrpBitmapUninit) {
    // First allocation here: every bitmap block gets written for the first time.
    r.header.flags &= ~kRgrpBitmapUninit;
    for (uint32_t b = 0; b < r.loc.bitmap_blocks; ++b) r.dirty_bitmaps.insert(b);
  }
  for (uint32_t b = first / per; b <= last / per; ++b) r.dirty_bitmaps.insert(b);
  r.dirty = true;
  txn.join(this);
}

bool Allocator::find_run(Rgrp& r, uint32_t from, uint32_t want, uint32_t* start, uint32_t* len) {
  const uint32_t n = r.loc.data_blocks;
  if (r.header.free_blocks <= r.pinned_count) return false;
  auto scan = [&](uint32_t lo, uint32_t hi) -> bool {
    for (uint32_t i = lo; i < hi;) {
      // 32 blocks in use: skip the word. A goal-directed search (a new inode near its
      // directory) otherwise steps through every inode allocated since.
      if (i % 32 == 0 && i + 32 <= hi) {
        uint64_t word;
        std::memcpy(&word, &r.bits[i / 4], sizeof word);
        if (no_free_state(word)) {
          i += 32;
          continue;
        }
      }
      if (i % 4 == 0) {
        uint8_t byte = r.bits[i / 4];
        // Four blocks in use: skip the byte.
        if ((byte & 0x03) && (byte & 0x0c) && (byte & 0x30) && (byte & 0xc0)) {
          i += 4;
          continue;
        }
      }
      if (!r.allocatable(i)) {
        ++i;
        continue;
      }
      uint32_t j = i + 1;
      while (j < n && j - i < want && r.allocatable(j)) ++j;
      *start = i;
      *len = j - i;
      return true;
    }
    return false;
  };
  from = std::min(from, n);
  return scan(from, n) || scan(0, from);
}

uint32_t Allocator::preferred_rgrp() const {
  return static_cast<uint32_t>(uint64_t{slot_} * g_.rgrp_count / std::max<uint32_t>(1, g_.journal_count));
}

Result<Allocator::Run> Allocator::alloc_blocks(Transaction& txn, uint64_t goal, uint32_t want) {
  release_durable();
  auto run = try_alloc(txn, goal, want);
  if (run || run.err() != ENOSPC || pins_.empty()) return run;
  // Only blocks waiting for a commit are left: commit, then take them.
  LUNFS_TRY(log_.commit());
  release_durable();
  return try_alloc(txn, goal, want);
}

Result<Allocator::Run> Allocator::try_alloc(Transaction& txn, uint64_t goal, uint32_t want) {
  want = std::max<uint32_t>(want, 1);
  int64_t goal_rg = goal ? g_.rgrp_of(goal) : -1;
  if (goal_rg >= 0) {
    // Affinity (decision 3): a goal in a group this node cannot lock without waiting
    // (another node allocates there: a directory it made, a file it wrote) gives way to
    // this node's own groups, so two nodes do not pass one rgrp glock back and forth. A
    // single-host mount always gets it (NoLockManager grants at once): locality as before.
    GlockName name{GlockType::kRgrp, static_cast<uint64_t>(goal_rg)};
    if (!txn.holds(name)) {
      auto holder = glocks_.try_lock(name, GlockMode::kExclusive);
      if (holder) {
        txn.keep(name, std::move(*holder));
      } else if (holder.err() == kGlockRetry) {
        goal_rg = -1;
      } else {
        return holder.status();
      }
    }
  }
  uint32_t first = goal_rg >= 0 ? static_cast<uint32_t>(goal_rg) : preferred_rgrp();
  for (uint32_t k = 0; k < g_.rgrp_count; ++k) {
    uint32_t idx = (first + k) % g_.rgrp_count;
    Rgrp& r = rgrps_[idx];
    // A stale header may be behind the other nodes' frees: only a fresh one may rule a group out.
    if (r.damaged || (!r.stale && r.header.free_blocks <= r.pinned_count)) continue;
    LUNFS_TRY(lock_rgrp(txn, idx));
    if (!load_bitmaps(r)) continue;
    uint32_t from = (k == 0 && goal_rg >= 0) ? static_cast<uint32_t>(goal - r.loc.first_data) : r.next_hint;
    uint32_t start = 0, len = 0;
    if (!find_run(r, from, want, &start, &len)) continue;
    touch(txn, r, start, start + len - 1);
    for (uint32_t i = start; i < start + len; ++i) r.set(i, BlockState::kUsed);
    r.header.free_blocks -= len;
    r.next_hint = start + len;
    delta_.free_blocks -= len;
    delta_dirty_ = true;
    return Run{r.loc.first_data + start, len};
  }
  return error(ENOSPC, "no free blocks left");
}

void Allocator::set_pins(const Pin& p, bool on) {
  Rgrp& r = rgrps_[g_.rgrp_of(p.start)];
  const auto first = static_cast<uint32_t>(p.start - r.loc.first_data);
  for (uint32_t i = first; i < first + p.length; ++i) r.pin(i, on);
  if (on) {
    pinned_total_ += p.length;
  } else {
    pinned_total_ -= p.length;
  }
}

void Allocator::pin_freed(uint64_t start, uint64_t length) {
  Pin p{0, start, length};
  set_pins(p, true);
  pending_pins_.push_back(p);
}

void Allocator::release_durable() {
  if (pins_.empty()) return;
  const uint64_t durable = log_.durable_sequence();
  while (!pins_.empty() && pins_.front().sequence <= durable) {
    set_pins(pins_.front(), false);
    pins_.pop_front();
  }
}

Result<uint64_t> Allocator::alloc_inode(Transaction& txn, uint64_t goal, uint64_t* generation) {
  LUNFS_ASSIGN(Run run, alloc_blocks(txn, goal, 1));
  Rgrp& r = rgrps_[g_.rgrp_of(run.start)];
  r.set(static_cast<uint32_t>(run.start - r.loc.first_data), BlockState::kDinode);
  r.header.dinodes += 1;
  *generation = r.header.next_generation++;
  delta_.dinodes += 1;
  return run.start;
}

Status Allocator::change_state(Transaction& txn, uint64_t start, uint64_t length, unsigned from_mask,
                               BlockState to) {
  int64_t rg = g_.rgrp_of(start);
  if (rg < 0 || length == 0 || g_.rgrp_of(start + length - 1) != rg) {
    return error(EIO, "block range " + std::to_string(start) + "+" + std::to_string(length) +
                          " outside one resource group");
  }
  Rgrp& r = rgrps_[rg];
  LUNFS_TRY(lock_rgrp(txn, static_cast<uint32_t>(rg)));
  LUNFS_TRY(load_bitmaps(r));
  uint32_t first = static_cast<uint32_t>(start - r.loc.first_data);
  for (uint32_t i = first; i < first + length; ++i) {
    if (!(from_mask & bit(r.state(i)))) {
      return damaged(r, error(EIO, "block " + std::to_string(r.loc.first_data + i) + " is " +
                                       block_state_name(r.state(i)) + " in the bitmap, cannot become " +
                                       block_state_name(to)));
    }
  }
  touch(txn, r, first, static_cast<uint32_t>(first + length - 1));
  for (uint32_t i = first; i < first + length; ++i) {
    BlockState s = r.state(i);
    if (s == BlockState::kFree) r.header.free_blocks -= 1;
    if (s == BlockState::kDinode) r.header.dinodes -= 1;
    if (s == BlockState::kUnlinked) r.header.unlinked -= 1;
    if (to == BlockState::kFree) r.header.free_blocks += 1;
    if (to == BlockState::kDinode) r.header.dinodes += 1;
    if (to == BlockState::kUnlinked) r.header.unlinked += 1;
    r.set(i, to);
  }
  delta_dirty_ = true;
  return Status::ok();
}

Status Allocator::free_blocks(Transaction& txn, uint64_t start, uint64_t length) {
  // A file's extent may not cross an rgrp (the codec checks it), so one call is one rgrp.
  LUNFS_TRY(change_state(txn, start, length, bit(BlockState::kUsed), BlockState::kFree));
  pin_freed(start, length);
  delta_.free_blocks += static_cast<int64_t>(length);
  return Status::ok();
}

Status Allocator::free_inode(Transaction& txn, uint64_t block) {
  LUNFS_TRY(change_state(txn, block, 1, bit(BlockState::kDinode) | bit(BlockState::kUnlinked), BlockState::kFree));
  pin_freed(block, 1);
  delta_.free_blocks += 1;
  delta_.dinodes -= 1;
  return Status::ok();
}

Status Allocator::mark_unlinked(Transaction& txn, uint64_t block) {
  return change_state(txn, block, 1, bit(BlockState::kDinode), BlockState::kUnlinked);
}

Result<bool> Allocator::is_inode(uint64_t block) {
  int64_t rg = g_.rgrp_of(block);
  if (rg < 0) return false;
  Rgrp& r = rgrps_[rg];
  // A damaged group cannot tell; the inode block's own checks still apply, and reading
  // what survives is the point of a withdrawn mount.
  if (r.damaged) return true;
  if (r.stale) {
    // Without the group's glock, the LUN's copy. The caller holds the inode's glock (or its
    // directory's), and whoever last changed the block's state held one of those too and
    // wrote its log home when it gave that glock up.
    auto s = state_on_disk(r, static_cast<uint32_t>(block - r.loc.first_data));
    if (!s) return true;
    return *s == BlockState::kDinode || *s == BlockState::kUnlinked;
  }
  if (!load_bitmaps(r)) return true;
  if (r.header.flags & kRgrpBitmapUninit) return false;
  BlockState s = r.state(static_cast<uint32_t>(block - r.loc.first_data));
  return s == BlockState::kDinode || s == BlockState::kUnlinked;
}

Result<std::vector<uint64_t>> Allocator::unlinked_inodes() {
  std::vector<uint64_t> out;
  const uint32_t per = Geometry::blocks_per_bitmap(g_.block_size);
  for (Rgrp& r : rgrps_) {
    if (r.damaged) continue;
    if (!r.stale) {  // decoded under its glock, and invalidated (under meta_mu) on demote
      if (r.header.unlinked == 0) continue;
      LUNFS_TRY(load_bitmaps(r));
      for (uint32_t j = 0; j < r.loc.data_blocks; ++j) {
        if (r.state(j) == BlockState::kUnlinked) out.push_back(r.loc.first_data + j);
      }
      continue;
    }
    LUNFS_ASSIGN(RgrpHeader h, header_on_disk(r));
    if (h.unlinked == 0 || (h.flags & kRgrpBitmapUninit)) continue;
    for (uint32_t b = 0; b < r.loc.bitmap_blocks; ++b) {
      const uint64_t nr = r.loc.header + 1 + b;
      const uint32_t count = std::min<uint32_t>(per, r.loc.data_blocks - b * per);
      LUNFS_ASSIGN(auto img, cache_.read_uncached(nr));
      LUNFS_ASSIGN(auto bm, decode_bitmap(img->span(), nr, sb_.csum_seed, r.loc, b, count));
      for (uint32_t j = 0; j < count; ++j) {
        if (static_cast<BlockState>((bm.bits[j / 4] >> (j % 4 * 2)) & 3) == BlockState::kUnlinked) {
          out.push_back(r.loc.first_data + uint64_t{b} * per + j);
        }
      }
    }
  }
  return out;
}

Result<AllocStats> Allocator::stats() {
  AllocStats s;
  for (const Rgrp& r : rgrps_) s.data_blocks += r.loc.data_blocks;
  LUNFS_ASSIGN(auto master_img, cache_.get(g_.statfs_block));
  LUNFS_ASSIGN(auto master, decode_statfs(master_img->span(), g_.statfs_block, sb_.csum_seed, g_));
  s.free_blocks = master.free_blocks + delta_.free_blocks;
  s.inodes = master.dinodes + delta_.dinodes;
  for (uint32_t slot = 0; slot < g_.journal_count; ++slot) {
    if (slot == slot_) continue;
    // Fresh from the LUN: another node writes it (home when it checkpoints).
    cache_.drop(g_.statfs_delta(slot));
    LUNFS_ASSIGN(auto img, cache_.get(g_.statfs_delta(slot)));
    LUNFS_ASSIGN(auto d, decode_statfs(img->span(), g_.statfs_delta(slot), sb_.csum_seed, g_));
    s.free_blocks += d.free_blocks;
    s.inodes += d.dinodes;
  }
  return s;
}

Result<bool> Allocator::fold_delta(Transaction& txn) {
  if (delta_.free_blocks == 0 && delta_.dinodes == 0) return false;
  LUNFS_ASSIGN(auto master_img, cache_.get(g_.statfs_block));
  LUNFS_ASSIGN(auto master, decode_statfs(master_img->span(), g_.statfs_block, sb_.csum_seed, g_));
  master.free_blocks += delta_.free_blocks;
  master.dinodes += delta_.dinodes;
  auto img = txn.new_block();
  encode_statfs(master, img->span(), g_.statfs_block, sb_.csum_seed);
  txn.put(g_.statfs_block, img);
  // The zeroed delta is written with the master (encode_into): one transaction, so every
  // crash point keeps master + deltas exact.
  delta_.free_blocks = 0;
  delta_.dinodes = 0;
  delta_dirty_ = true;
  txn.join(this);
  return true;
}

void Allocator::encode_into(Transaction& txn) {
  const uint32_t per = Geometry::blocks_per_bitmap(g_.block_size);
  for (Rgrp& r : rgrps_) {
    if (!r.dirty) continue;
    auto img = txn.new_block();
    encode_rgrp_header(r.header, img->span(), r.loc.header, txn.sequence(), sb_.csum_seed);
    txn.put(r.loc.header, img);
    for (uint32_t b : r.dirty_bitmaps) {
      BitmapBlock bm;
      bm.rgrp = r.loc.index;
      bm.bitmap_index = b;
      bm.bits.assign(g_.block_size - kBitmapDataOffset, 0);
      std::copy(r.bits.begin() + uint64_t{b} * (per / 4), r.bits.begin() + uint64_t{b + 1} * (per / 4),
                bm.bits.begin());
      auto bimg = txn.new_block();
      encode_bitmap(bm, bimg->span(), r.loc.header + 1 + b, txn.sequence(), sb_.csum_seed);
      txn.put(r.loc.header + 1 + b, bimg);
    }
  }
  if (delta_dirty_) {
    auto img = txn.new_block();
    encode_statfs(delta_, img->span(), g_.statfs_delta(slot_), sb_.csum_seed);
    txn.put(g_.statfs_delta(slot_), img);
  }
}

void Allocator::committed(uint64_t log_sequence) {
  for (Rgrp& r : rgrps_) {
    r.dirty = false;
    r.dirty_bitmaps.clear();
  }
  delta_dirty_ = false;
  for (Pin& p : pending_pins_) {
    p.sequence = log_sequence;
    pins_.push_back(p);
  }
  pending_pins_.clear();
}

void Allocator::rollback() {
  // The frees did not happen: those blocks are in use again, not pinned.
  for (const Pin& p : pending_pins_) set_pins(p, false);
  pending_pins_.clear();
  for (Rgrp& r : rgrps_) {
    if (!r.dirty) continue;
    r.dirty = false;
    r.dirty_bitmaps.clear();
    r.loaded = false;
    (void)read_header(r);
  }
  if (delta_dirty_) {
    delta_dirty_ = false;
    auto img = cache_.get(g_.statfs_delta(slot_));
    if (img) {
      auto d = decode_statfs((*img)->span(), g_.statfs_delta(slot_), sb_.csum_seed, g_);
      if (d) delta_ = *d;
    }
  }
}

}  // namespace lunfs

// JournalModel: deterministic block contents and the expected state after a prefix of
// transactions.
#include "tests/crash/journal_model.h"

#include <algorithm>
#include <cstring>

#include "fs/format/ondisk.h"

namespace lunfs::crash {

using ondisk::get;
using ondisk::put;

namespace {
constexpr uint32_t kTag = 0x5453544A;  // "JTST"
constexpr uint32_t kMetaKind = 1, kDataKind = 2;

void fill(std::span<std::byte> b, uint32_t kind, uint64_t txn, uint64_t block, size_t from) {
  uint64_t x = txn * 0x9E3779B97F4A7C15ull ^ block * 0xC2B2AE3D27D4EB4Full ^ kind;
  for (size_t i = from; i + 8 <= b.size(); i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    put<uint64_t>(b, i, x);
  }
  put<uint32_t>(b, 32, kTag);
  put<uint32_t>(b, 36, kind);
  put<uint64_t>(b, 40, txn);
  put<uint64_t>(b, 48, block);
}
}  // namespace

JournalModel::JournalModel(const ondisk::Superblock& sb)
    : sb_(sb), marker_(sb.geometry.rgrp(0).first_data + 511) {}

std::shared_ptr<AlignedBuffer> JournalModel::meta_image(uint64_t txn, uint64_t block) const {
  auto buf = std::make_shared<AlignedBuffer>(sb_.geometry.block_size);
  fill(buf->span(), kMetaKind, txn, block, 64);
  ondisk::seal_block(buf->span(), ondisk::BlockType::kInode, block, txn, sb_.csum_seed);
  return buf;
}

AlignedBuffer JournalModel::data_block(uint64_t txn, uint64_t block) const {
  AlignedBuffer buf(sb_.geometry.block_size);
  fill(buf.span(), kDataKind, txn, block, 0);
  return buf;
}

TransactionRecord JournalModel::begin() {
  ++last_;
  TransactionRecord txn;
  write_meta(txn, marker_);
  return txn;
}

void JournalModel::write_meta(TransactionRecord& txn, uint64_t block) {
  auto& ev = events_[block];
  if (!ev.empty() && ev.back().txn == last_) ev.pop_back();
  ev.push_back({last_, Kind::kMeta});
  std::erase_if(txn.blocks, [&](const BlockImage& b) { return b.blocknr == block; });
  txn.blocks.push_back({block, meta_image(last_, block)});
}

void JournalModel::free_block(TransactionRecord& txn, uint64_t block) {
  auto& ev = events_[block];
  if (!ev.empty() && ev.back().txn == last_) ev.pop_back();
  ev.push_back({last_, Kind::kFree});
  std::erase_if(txn.blocks, [&](const BlockImage& b) { return b.blocknr == block; });
  txn.revokes.push_back(block);
}

Status JournalModel::write_data(BlockDevice& dev, uint64_t block) {
  auto& ev = events_[block];
  // Data goes only into free blocks; a block never used before counts as freed at the start.
  if (ev.empty()) ev.push_back({0, Kind::kFree});
  if (!ev.empty() && ev.back().txn == last_) ev.pop_back();
  ev.push_back({last_, Kind::kData});
  AlignedBuffer buf = data_block(last_, block);
  return dev.write(block * sb_.geometry.block_size, buf.span());
}

Status JournalModel::remember_initial(BlockDevice& dev, uint64_t block) {
  if (initial_.count(block)) return Status::ok();
  std::vector<std::byte> b(sb_.geometry.block_size);
  LUNFS_TRY(dev.read(block * sb_.geometry.block_size, b));
  initial_[block] = std::move(b);
  return Status::ok();
}

std::string JournalModel::describe(std::span<const std::byte> got, uint64_t block) const {
  if (get<uint32_t>(got, 32) != kTag) {
    auto it = initial_.find(block);
    if (it != initial_.end() && std::equal(got.begin(), got.end(), it->second.begin())) {
      return "its initial contents";
    }
    return "unknown contents";
  }
  std::string kind = get<uint32_t>(got, 36) == kMetaKind ? "metadata" : "data";
  return kind + " of transaction " + std::to_string(get<uint64_t>(got, 40)) + " (block " +
         std::to_string(get<uint64_t>(got, 48)) + ")";
}

Result<uint64_t> JournalModel::verify(BlockDevice& disk, uint64_t acked) const {
  const uint32_t bs = sb_.geometry.block_size;
  AlignedBuffer got(bs);
  LUNFS_TRY(disk.read(marker_ * bs, got.span()));
  uint64_t state = 0;
  if (get<uint32_t>(got.span(), 32) == kTag) state = get<uint64_t>(got.span(), 40);
  if (state > last_) return error(EIO, "marker names transaction " + std::to_string(state) + ", never submitted");
  if (state < acked) {
    return error(EIO, "lost acknowledged transactions: disk holds " + std::to_string(state) +
                          " transactions, " + std::to_string(acked) + " were acknowledged");
  }
  for (const auto& entry : events_) {
    // Not a structured binding: clang 14 cannot capture one in the lambda below.
    const uint64_t block = entry.first;
    const auto& events = entry.second;
    auto it = std::upper_bound(events.begin(), events.end(), state,
                               [](uint64_t s, const Event& e) { return s < e.txn; });
    LUNFS_TRY(disk.read(block * bs, got.span()));
    auto mismatch = [&](const std::string& expected) {
      return error(EIO, "half-applied state " + std::to_string(state) + ": block " +
                            std::to_string(block) + " should hold " + expected + ", holds " +
                            describe(got.span(), block));
    };
    if (it == events.begin()) {
      auto init = initial_.find(block);
      if (init != initial_.end() && !std::equal(init->second.begin(), init->second.end(), got.data())) {
        return mismatch("its initial contents");
      }
      continue;
    }
    const Event& e = *std::prev(it);
    if (e.kind == Kind::kFree) continue;  // free: any contents
    if (e.kind == Kind::kMeta) {
      auto want = meta_image(e.txn, block);
      if (!std::equal(want->data(), want->data() + bs, got.data())) {
        return mismatch("metadata of transaction " + std::to_string(e.txn));
      }
    } else {
      AlignedBuffer want = data_block(e.txn, block);
      if (!std::equal(want.data(), want.data() + bs, got.data())) {
        return mismatch("data of transaction " + std::to_string(e.txn));
      }
    }
  }
  return state;
}

}  // namespace lunfs::crash

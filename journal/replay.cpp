// Replay: scan, resolve revokes, write the newest surviving image of each block home,
// flush, then advance the tail in the slot header and flush again. The order makes replay
// idempotent: until the tail moves, a second replay sees the same log and writes the same
// images; after it moves, the images are durable at home.
#include "journal/replay.h"

#include <algorithm>
#include <map>

#include "fs/device/aligned_buffer.h"
#include "journal/log_reader.h"
#include "journal/slot_tail.h"

namespace lunfs::journal {

namespace {

// Writes the images home in log order through the read-ahead window; images adjacent in
// the log and at home (the common case: a transaction's blocks of one extent or rgrp) go
// out in one write.
Status write_home(BlockDevice& dev, const JournalArea& area, uint32_t tail,
                  const std::map<uint64_t, uint64_t>& by_position) {
  LogReader reader(dev, area);
  const uint32_t bs = area.block_size;
  AlignedBuffer run(std::min<uint64_t>(LogReader::kWindowBlocks, by_position.size()) * bs);
  uint64_t run_home = 0, run_blocks = 0;
  auto flush_run = [&]() -> Status {
    if (run_blocks == 0) return Status::ok();
    Status st = dev.write(run_home * bs, run.span().first(run_blocks * bs));
    run_blocks = 0;
    return st;
  };
  uint64_t last_offset = 0;
  for (auto [offset, home] : by_position) {
    const bool extends = run_blocks > 0 && home == run_home + run_blocks && offset == last_offset + 1 &&
                         run_blocks < LogReader::kWindowBlocks;
    if (!extends) {
      LUNFS_TRY(flush_run());
      run_home = home;
    }
    LUNFS_ASSIGN(std::span<const std::byte> image, reader.block(uint64_t{tail} + offset));
    std::copy(image.begin(), image.end(), run.data() + run_blocks * bs);
    ++run_blocks;
    last_offset = offset;
  }
  return flush_run();
}

}  // namespace

std::string ReplayReport::to_string() const {
  std::string s = "slot " + std::to_string(slot) + ": ";
  if (transactions == 0) {
    s += "nothing to replay";
  } else {
    s += "replayed " + std::to_string(transactions) + " transactions (" +
         std::to_string(first_sequence) + ".." + std::to_string(last_sequence) + "), " +
         std::to_string(blocks_written) + " blocks written home, " +
         std::to_string(blocks_revoked) + " revoked images skipped";
  }
  s += "; " + end_reason;
  if (end == LogEnd::kDamaged) s += "; journal left dirty";
  return s;
}

Result<ReplayReport> replay(BlockDevice& dev, const ondisk::Superblock& sb, uint32_t slot) {
  if (slot >= sb.geometry.journal_count) {
    return error(EINVAL, "slot " + std::to_string(slot) + " does not exist");
  }
  const JournalArea area = JournalArea::of(sb, slot);
  LUNFS_ASSIGN(ondisk::SlotHeader header, read_slot_header(dev, sb, slot));
  LUNFS_ASSIGN(ScanResult scan, scan_log(dev, area, header.tail_block, header.tail_sequence));

  ReplayReport report;
  report.slot = slot;
  report.transactions = scan.txns.size();
  report.end = scan.end;
  report.end_reason = scan.end_reason;
  if (!scan.txns.empty()) {
    report.first_sequence = scan.txns.front().sequence;
    report.last_sequence = scan.txns.back().sequence;
  }

  // A revoke in transaction R cancels images of the block from transactions <= R; a later
  // image (the block was reused as metadata) is replayed again.
  std::map<uint64_t, uint64_t> revoked_at;
  for (const ScannedTxn& t : scan.txns) {
    for (uint64_t b : t.revokes) revoked_at[b] = t.sequence;
  }
  std::map<uint64_t, std::pair<uint64_t, uint32_t>> newest;  // home -> (sequence, log position)
  for (const ScannedTxn& t : scan.txns) {
    for (auto [home, pos] : t.images) newest[home] = {t.sequence, pos};
  }
  std::map<uint64_t, uint64_t> by_position;  // log offset from the tail -> home block
  for (auto [home, where] : newest) {
    auto r = revoked_at.find(home);
    if (r != revoked_at.end() && r->second >= where.first) {
      ++report.blocks_revoked;
      continue;
    }
    const uint32_t from_tail = (where.second + area.blocks - header.tail_block) % area.blocks;
    by_position[from_tail] = home;
  }
  LUNFS_TRY(write_home(dev, area, header.tail_block, by_position));
  report.blocks_written = by_position.size();
  if (report.end == LogEnd::kDamaged) {
    LUNFS_TRY(dev.flush());
    return report;
  }
  if (!scan.txns.empty() || scan.end == LogEnd::kTorn) {
    LUNFS_TRY(dev.flush());  // images durable at home before the log that holds them is freed
    header.tail_block = scan.end_position;
    // Skip the number of a discarded transaction, so that its remains read as records of an
    // earlier pass: the journal is then clean for fsck, and the next transaction written
    // there cannot be confused with them.
    header.tail_sequence = scan.next_sequence + (scan.end == LogEnd::kTorn ? 1 : 0);
    LUNFS_TRY(write_slot_header(dev, sb, header));
    LUNFS_TRY(dev.flush());
  }
  report.marked_clean = true;
  return report;
}

}  // namespace lunfs::journal

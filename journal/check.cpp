// fsck's view of one journal: the log from the tail (as replay would see it), then a sweep
// of the whole journal for records newer than the log's end, which a correctly written
// journal never holds (transaction N+1 is written only after N's commit is durable), so
// finding one means committed transactions were lost to damage. The sweep also notices
// records of another file system or slot, which replay ignores.
#include "journal/check.h"

#include <algorithm>

#include "fs/device/aligned_buffer.h"
#include "journal/log_scan.h"
#include "journal/slot_tail.h"

namespace lunfs::journal {

namespace {
std::string n(uint64_t v) { return std::to_string(v); }
}  // namespace

JournalCheck check_journal(BlockDevice& dev, const ondisk::Superblock& sb, uint32_t slot) {
  JournalCheck out;
  auto add = [&](bool error, std::string text) { out.findings.push_back({error, std::move(text)}); };
  auto header = read_slot_header(dev, sb, slot);
  if (!header) {
    add(true, "journal cannot be checked: " + header.status().message());
    return out;
  }
  const JournalArea area = JournalArea::of(sb, slot);
  auto scan = scan_log(dev, area, header->tail_block, header->tail_sequence);
  if (!scan) {
    add(true, "journal cannot be read: " + scan.status().to_string());
    return out;
  }
  if (!scan->txns.empty()) {
    out.dirty = true;
    add(true, "journal needs replay: " + n(scan->txns.size()) + " committed transactions (" +
                  n(scan->txns.front().sequence) + ".." + n(scan->txns.back().sequence) +
                  ") are not yet written home; mount the file system (or replay the slot) "
                  "before trusting the rest of this check");
  }
  if (scan->end == LogEnd::kDamaged) add(true, "journal damaged: " + scan->end_reason);
  if (scan->end == LogEnd::kTorn) {
    out.dirty = true;
    add(false, "journal ends with an interrupted commit, which replay will discard: " +
                   scan->end_reason);
  }

  // Sweep for records beyond the end of the log.
  const uint64_t newest_allowed = scan->next_sequence;
  const uint32_t chunk = 16;  // small reads: stays below malloc's mmap threshold
  AlignedBuffer buf(uint64_t{chunk} * area.block_size);
  size_t beyond = 0, foreign = 0;
  std::string first_beyond, first_foreign;
  for (uint32_t start = 0; start < area.blocks; start += chunk) {
    const uint32_t count = std::min(chunk, area.blocks - start);
    auto part = buf.span().first(uint64_t{count} * area.block_size);
    if (auto st = dev.read(area.offset(start), part); !st) {
      add(true, "journal block " + n(start) + " unreadable: " + st.to_string());
      continue;
    }
    for (uint32_t i = 0; i < count; ++i) {
      Record r = parse_record(part.subspan(uint64_t{i} * area.block_size, area.block_size),
                              area.id, area.absolute(start + i), area.device_blocks);
      const bool ours = r.kind == Record::Kind::kDescriptor || r.kind == Record::Kind::kRevoke ||
                        r.kind == Record::Kind::kCommit;
      if (r.kind == Record::Kind::kForeign && foreign++ == 0) {
        first_foreign = "journal block " + n(start + i) + ": " + r.problem;
      }
      if (ours && r.sequence > newest_allowed) {
        if (beyond++ == 0) {
          first_beyond = "journal block " + n(start + i) + " holds transaction " + n(r.sequence);
        }
      }
    }
  }
  if (beyond > 0) {
    add(true, "journal damaged: " + n(beyond) + " records newer than the end of the log (" +
                  first_beyond + ", the log ends before transaction " + n(newest_allowed) +
                  "); committed transactions were lost");
  }
  // Never replayed, so harmless; but worth a word: either the LUN held another lunfs before
  // this mkfs, or a block was copied here from another journal.
  if (foreign > 0) {
    add(false, "journal holds " + n(foreign) + " records of another file system or slot (first: " +
                   first_foreign + "); they are ignored by replay (left over from an earlier file system on "
                   "this LUN?)");
  }
  return out;
}

}  // namespace lunfs::journal

// Finding dirty journals reads only each log from its tail (scan_log), not the whole
// journal: the checker's own journal pass (journal::check_journal) sweeps every block later.
#include "fsck/journal_recovery.h"

#include "journal/area.h"
#include "journal/log_scan.h"
#include "journal/slot_tail.h"

namespace lunfs {

Result<std::vector<DirtyJournal>> find_dirty_journals(BlockDevice& dev, const ondisk::Superblock& sb) {
  std::vector<DirtyJournal> out;
  for (uint32_t slot = 0; slot < sb.geometry.journal_count; ++slot) {
    auto header = journal::read_slot_header(dev, sb, slot);
    if (!header) continue;  // unreadable or undecodable: the checker reports it, replay cannot start
    LUNFS_ASSIGN(journal::ScanResult scan,
                 journal::scan_log(dev, journal::JournalArea::of(sb, slot), header->tail_block,
                                   header->tail_sequence));
    if (scan.txns.empty() && scan.end == journal::LogEnd::kClean) continue;
    std::string state;
    if (!scan.txns.empty()) {
      state = std::to_string(scan.txns.size()) + " committed transactions (" +
              std::to_string(scan.txns.front().sequence) + ".." + std::to_string(scan.txns.back().sequence) +
              ") not yet written home";
    } else {
      state = "no committed transactions to apply";
    }
    switch (scan.end) {
      case journal::LogEnd::kClean: state += "; replay stops at the end of the log: "; break;
      case journal::LogEnd::kTorn: state += "; the log ends with an interrupted commit, which replay discards: "; break;
      case journal::LogEnd::kDamaged: state += "; the log is DAMAGED and replay stops there: "; break;
    }
    state += scan.end_reason;
    out.push_back({slot, std::move(state)});
  }
  return out;
}

Result<std::vector<journal::ReplayReport>> replay_journals(BlockDevice& dev, const ondisk::Superblock& sb,
                                                           const std::vector<DirtyJournal>& dirty) {
  std::vector<journal::ReplayReport> reports;
  for (const DirtyJournal& d : dirty) {
    LUNFS_ASSIGN(journal::ReplayReport r, journal::replay(dev, sb, d.slot));
    reports.push_back(std::move(r));
  }
  return reports;
}

}  // namespace lunfs

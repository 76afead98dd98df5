// The log parser. Transactions are laid out as descriptor blocks each followed by the images
// it names, then revoke blocks, then one commit block whose xxHash64 covers every block
// before it (docs/journal.md). Image positions are known from the descriptors and are never
// parsed, so an image that happens to look like a record is harmless.
#include "journal/log_scan.h"

#include <optional>

#include "journal/log_reader.h"

namespace lunfs::journal {

const char* log_end_name(LogEnd end) {
  switch (end) {
    case LogEnd::kClean: return "clean end";
    case LogEnd::kTorn: return "incomplete transaction";
    case LogEnd::kDamaged: return "damaged";
  }
  return "unknown";
}

namespace {

std::string n(uint64_t v) { return std::to_string(v); }

class Scanner {
 public:
  Scanner(BlockDevice& dev, const JournalArea& area) : area_(area), reader_(dev, area) {}

  // Terminates: every transaction takes at least two positions and the next sequence, and
  // a position holds one sequence, so the scan cannot pass the tail a second time.
  Result<ScanResult> run(uint32_t position, uint64_t sequence) {
    ScanResult out;
    for (;;) {
      out.end_position = position;
      out.next_sequence = sequence;
      LUNFS_ASSIGN(Record first, read(position));
      if (auto end = judge_start(first, sequence, position)) {
        out.end = end->first;
        out.end_reason = end->second;
        return out;
      }
      ScannedTxn txn;
      txn.sequence = sequence;
      txn.start = position;
      std::string why;
      LUNFS_ASSIGN(bool complete, read_txn(txn, first, why));
      if (!complete) {
        out.end = LogEnd::kTorn;
        out.end_reason = "transaction " + n(sequence) + " at journal block " + n(position) +
                         " is incomplete (" + why + "); discarded";
        return out;
      }
      position = area_.wrap(uint64_t{position} + txn.blocks);
      sequence += 1;
      out.txns.push_back(std::move(txn));
    }
  }

 private:
  Result<Record> read(uint32_t position) {
    LUNFS_ASSIGN(current_, reader_.block(position));
    return parse_record(current_, area_.id, area_.absolute(position), area_.device_blocks);
  }

  // Whether the record at the expected start of transaction `sequence` begins one; if not,
  // how the log ends there.
  std::optional<std::pair<LogEnd, std::string>> judge_start(const Record& r, uint64_t sequence,
                                                            uint32_t position) {
    const std::string at = " at journal block " + n(position);
    switch (r.kind) {
      case Record::Kind::kNotARecord:
      case Record::Kind::kForeign:
        return std::pair{LogEnd::kClean, "end of log" + at + ": " + r.problem};
      case Record::Kind::kDamaged:
        // Its sequence is untrusted. Only a block whose header says it starts the expected
        // transaction can be that transaction's torn first write; anything else is remains
        // of an earlier pass or of a transaction a replay already discarded.
        if (r.sequence != sequence) {
          return std::pair{LogEnd::kClean, "end of log" + at + ": damaged remains of an earlier transaction"};
        }
        return std::pair{LogEnd::kTorn, "first block of transaction " + n(sequence) + at +
                                            " is damaged (" + r.problem + "); discarded"};
      case Record::Kind::kCommit:
      case Record::Kind::kDescriptor:
      case Record::Kind::kRevoke:
        break;
    }
    if (r.sequence < sequence) {
      return std::pair{LogEnd::kClean, "end of log" + at + ": record of transaction " +
                                           n(r.sequence) + " from an earlier pass"};
    }
    if (r.sequence > sequence) {
      return std::pair{LogEnd::kDamaged, "sequence gap" + at + ": expected transaction " +
                                             n(sequence) + ", found " + n(r.sequence)};
    }
    if (r.kind == Record::Kind::kCommit) {
      return std::pair{LogEnd::kDamaged,
                       "commit of transaction " + n(sequence) + at + " without its blocks"};
    }
    return std::nullopt;
  }

  // Follows one transaction from its first record; false (with `why`) when it has no valid
  // commit.
  Result<bool> read_txn(ScannedTxn& txn, Record record, std::string& why) {
    TxnHasher hasher(area_.id.seed);
    uint32_t count = 0;  // blocks before the commit
    for (;;) {
      const uint32_t position = area_.wrap(uint64_t{txn.start} + count);
      if (count > 0) {
        if (count >= area_.blocks) {
          why = "longer than the journal";
          return false;
        }
        LUNFS_ASSIGN(record, read(position));
        if (record.kind == Record::Kind::kDescriptor || record.kind == Record::Kind::kRevoke ||
            record.kind == Record::Kind::kCommit) {
          if (record.sequence != txn.sequence) {
            why = "block " + n(count) + " holds a record of transaction " + n(record.sequence);
            return false;
          }
        } else {
          why = "block " + n(count) + ": " + record.problem;
          return false;
        }
      }
      if (record.kind == Record::Kind::kCommit) {
        if (record.txn_blocks != count) {
          why = "commit counts " + n(record.txn_blocks) + " blocks, found " + n(count);
          return false;
        }
        if (record.txn_hash != hasher.digest()) {
          why = "checksum over the transaction does not match";
          return false;
        }
        txn.blocks = count + 1;
        return true;
      }
      hasher.add(current_);
      ++count;
      if (record.kind == Record::Kind::kRevoke) {
        txn.revokes.insert(txn.revokes.end(), record.entries.begin(), record.entries.end());
        continue;
      }
      // Descriptor: its images follow; they are hashed, never parsed.
      for (uint64_t target : record.entries) {
        if (count >= area_.blocks) {
          why = "longer than the journal";
          return false;
        }
        const uint32_t image_pos = area_.wrap(uint64_t{txn.start} + count);
        LUNFS_ASSIGN(std::span<const std::byte> image, reader_.block(image_pos));
        hasher.add(image);
        txn.images.emplace_back(target, image_pos);
        ++count;
      }
    }
  }

  const JournalArea& area_;
  LogReader reader_;
  std::span<const std::byte> current_;  // the last record read
};

}  // namespace

Result<ScanResult> scan_log(BlockDevice& dev, const JournalArea& area, uint32_t tail_position,
                            uint64_t tail_sequence) {
  if (tail_position >= area.blocks) return error(EIO, "journal tail beyond the journal's end");
  return Scanner(dev, area).run(tail_position, tail_sequence);
}

}  // namespace lunfs::journal

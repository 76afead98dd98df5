// Reading the log: from the tail recorded in the slot header, find the committed
// transactions in order and say, in words, why the log ends where it ends. Replay, fsck and
// the fuzz target share this parser.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fs/device/block_device.h"
#include "journal/area.h"

namespace lunfs::journal {

struct ScannedTxn {
  uint64_t sequence = 0;
  uint32_t start = 0;   // position of its first block
  uint32_t blocks = 0;  // including the commit block
  std::vector<std::pair<uint64_t, uint32_t>> images;  // (home block, log position)
  std::vector<uint64_t> revokes;
};

enum class LogEnd {
  kClean,    // the next position holds no record of this log: the normal end
  kTorn,     // a transaction without a valid commit: interrupted by a crash, discarded
  kDamaged,  // evidence that committed transactions are missing (sequence gap, bad layout)
};
const char* log_end_name(LogEnd end);

struct ScanResult {
  std::vector<ScannedTxn> txns;
  uint32_t end_position = 0;  // where the next transaction goes
  uint64_t next_sequence = 0;
  LogEnd end = LogEnd::kClean;
  std::string end_reason;
};

// Device read errors are errors; everything about the log's contents is in the result.
Result<ScanResult> scan_log(BlockDevice& dev, const JournalArea& area, uint32_t tail_position,
                            uint64_t tail_sequence);

}  // namespace lunfs::journal

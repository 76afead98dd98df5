// Reads log blocks through a read-ahead window: replay and the scan walk the log mostly
// sequentially, and one 1 MiB read costs about what one 4 KiB O_DIRECT read costs, so a
// full 128 MiB journal replays in well under a second instead of tens of seconds.
#pragma once

#include <cstdint>
#include <span>

#include "fs/aligned_buffer.h"
#include "fs/block_device.h"
#include "journal/area.h"

namespace lunfs::journal {

class LogReader {
 public:
  static constexpr uint32_t kWindowBlocks = 256;
  LogReader(BlockDevice& dev, const JournalArea& area)
      : dev_(dev), area_(area), window_(uint64_t{kWindowBlocks} * area.block_size) {}

  // The block at `position` (wrapped); valid until the next call.
  Result<std::span<const std::byte>> block(uint64_t position) {
    const uint32_t pos = area_.wrap(position);
    if (count_ == 0 || pos < start_ || pos >= start_ + count_) {
      start_ = pos;
      count_ = std::min(kWindowBlocks, area_.blocks - pos);  // never across the journal's end
      LUNFS_TRY(dev_.read(area_.offset(pos), window_.span().first(uint64_t{count_} * area_.block_size)));
    }
    return std::span<const std::byte>(window_.span().subspan(uint64_t{pos - start_} * area_.block_size,
                                                             area_.block_size));
  }

 private:
  BlockDevice& dev_;
  const JournalArea& area_;
  AlignedBuffer window_;
  uint32_t start_ = 0;
  uint32_t count_ = 0;
};

}  // namespace lunfs::journal

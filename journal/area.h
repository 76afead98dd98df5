// Where one slot's journal lives and how log positions map to device blocks. A position is
// a block offset within the journal; the log is circular, so positions wrap at `blocks`.
#pragma once

#include <cstdint>

#include "fs/format/superblock.h"
#include "journal/log_format.h"

namespace lunfs::journal {

struct JournalArea {
  uint64_t first = 0;   // absolute block of position 0
  uint32_t blocks = 0;  // journal length
  uint32_t block_size = 0;
  uint64_t device_blocks = 0;  // bound for target block numbers
  uint64_t slot_header = 0;    // absolute block of the slot header
  LogIdentity id;

  static JournalArea of(const ondisk::Superblock& sb, uint32_t slot) {
    const ondisk::Geometry& g = sb.geometry;
    JournalArea a;
    a.first = g.journal(slot);
    a.blocks = g.journal_blocks;
    a.block_size = g.block_size;
    a.device_blocks = g.block_count;
    a.slot_header = g.slot_header(slot);
    a.id = LogIdentity{sb.uuid, slot, sb.csum_seed};
    return a;
  }
  uint32_t wrap(uint64_t pos) const { return static_cast<uint32_t>(pos % blocks); }
  uint64_t absolute(uint64_t pos) const { return first + wrap(pos); }
  uint64_t offset(uint64_t pos) const { return absolute(pos) * block_size; }
  // True when block `b` lies inside any journal (images must never target a journal).
  static bool in_journals(const ondisk::Geometry& g, uint64_t b) {
    return b >= g.journal_start && b < g.rgrp_start;
  }
};

}  // namespace lunfs::journal

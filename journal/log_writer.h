// Appending one transaction to the log: descriptor blocks each followed by the images they
// name, revoke blocks, a flush, then the commit block and a second flush (docs/journal.md,
// "Ordering"). The first flush makes the ordered data writes and the transaction's blocks
// durable before the commit record can be; only the second makes the commit durable.
#pragma once

#include <cstdint>
#include <vector>

#include "fs/device/block_device.h"
#include "fs/metadata_log.h"
#include "journal/area.h"

namespace lunfs::journal {

// Log blocks a transaction of `images` and `revokes` occupies, commit included.
uint64_t transaction_blocks(size_t images, size_t revokes, uint32_t block_size);

// Writes the transaction at log position `position` (wrapping at the journal's end) and
// returns when it is durable. The caller guarantees the space is free.
Status write_transaction(BlockDevice& dev, const JournalArea& area, uint64_t position,
                         uint64_t sequence, const std::vector<BlockImage>& images,
                         const std::vector<uint64_t>& revokes);

}  // namespace lunfs::journal

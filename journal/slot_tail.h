// Reading and writing the slot header, whose tail fields say where replay starts. Only the
// tail fields change when the journal writes it; the header fits in the first sector of its
// block (the rest is zeros), so under the usual sector-atomicity assumption an interrupted
// write leaves either the old or the new header, never a torn one.
#pragma once

#include <cstdint>

#include "fs/device/block_device.h"
#include "fs/format/slot_format.h"
#include "fs/format/superblock.h"

namespace lunfs::journal {

Result<ondisk::SlotHeader> read_slot_header(BlockDevice& dev, const ondisk::Superblock& sb,
                                            uint32_t slot);
Status write_slot_header(BlockDevice& dev, const ondisk::Superblock& sb,
                         const ondisk::SlotHeader& header);

}  // namespace lunfs::journal

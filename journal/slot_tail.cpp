// Slot header I/O for the journal.
#include "journal/slot_tail.h"

#include "fs/device/aligned_buffer.h"

namespace lunfs::journal {

Result<ondisk::SlotHeader> read_slot_header(BlockDevice& dev, const ondisk::Superblock& sb,
                                            uint32_t slot) {
  const ondisk::Geometry& g = sb.geometry;
  AlignedBuffer buf(g.block_size);
  LUNFS_TRY(dev.read(g.slot_header(slot) * g.block_size, buf.span()));
  auto header = ondisk::decode_slot_header(buf.span(), g.slot_header(slot), sb.csum_seed, g);
  if (!header) {
    return error(EIO, "journal of slot " + std::to_string(slot) + ": " + header.status().message());
  }
  return header;
}

Status write_slot_header(BlockDevice& dev, const ondisk::Superblock& sb,
                         const ondisk::SlotHeader& header) {
  const ondisk::Geometry& g = sb.geometry;
  AlignedBuffer buf(g.block_size);
  ondisk::encode_slot_header(header, buf.span(), g.slot_header(header.slot), sb.csum_seed);
  return dev.write(g.slot_header(header.slot) * g.block_size, buf.span());
}

}  // namespace lunfs::journal

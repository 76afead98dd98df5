// fsck pass 1: the superblock fsck trusts (the primary, or an intact backup), and the
// backup compared with the primary.
#include "fsck/checker_state.h"

#include "fs/format/signature.h"

namespace lunfs::fsck {

using namespace ondisk;

Status Checker::load_superblock() {
  LUNFS_ASSIGN(LocatedSuperblock found, locate_superblock(dev_));
  report_.sb = found.sb;
  have_primary_ = found.primary_damage.empty();
  if (!have_primary_) {
    error("primary superblock damaged (" + found.primary_damage + "); the backup superblock at block " +
          n(found.backup_block) + " is intact and was used");
  }
  return Status::ok();
}

void Checker::compare_backup() {
  const Geometry& g = report_.sb.geometry;
  AlignedBuffer one;
  if (!read_one(g.backup_sb_block, one, "backup superblock")) {
    backup_bad_ = true;
    return;
  }
  auto backup = decode_superblock(one.span(), g.backup_sb_block);
  if (!backup) {
    backup_bad_ = true;
    error("backup superblock: " + backup.status().message());
  } else if (!(*backup == report_.sb)) {
    backup_bad_ = true;
    error("backup superblock at block " + n(g.backup_sb_block) + " differs from the primary");
  }
}

}  // namespace lunfs::fsck

namespace lunfs {

using namespace ondisk;

namespace {

Status not_lunfs(BlockDevice& dev, const std::string& why) {
  auto sigs = detect_signatures(dev);
  if (sigs && !sigs->empty()) {
    return lunfs::error(EMEDIUMTYPE, "not a lunfs device: it holds a " + sigs->front().what);
  }
  return lunfs::error(EMEDIUMTYPE, "not a lunfs device: " + why);
}

}  // namespace

Result<LocatedSuperblock> locate_superblock(BlockDevice& dev) {
  const uint64_t off = kSuperblockOffset;
  if (dev.size_bytes() < off + kMinBlockSize) return not_lunfs(dev, "the device is too small to hold lunfs");
  uint64_t len = std::min<uint64_t>(kMaxBlockSize, dev.size_bytes() - off);
  len -= len % dev.io_alignment();
  AlignedBuffer buf(len);
  LUNFS_TRY(dev.read(off, buf.span()));
  uint32_t claimed_bs = get<uint32_t>(buf.span(), 36);
  uint64_t primary_block = claimed_bs ? off / claimed_bs : 0;
  auto primary = decode_superblock(buf.span(), primary_block);
  if (primary) {
    LUNFS_TRY(check_features(*primary, false));
    return LocatedSuperblock{*primary, "", 0};
  }
  // Primary damaged: look for a backup at the end of the device, for every block size.
  for (uint32_t b = kMinBlockSize; b <= kMaxBlockSize; b *= 2) {
    if (b % dev.io_alignment() != 0 || dev.size_bytes() / b < 2) continue;
    uint64_t backup_block = dev.size_bytes() / b - 1;
    AlignedBuffer one(b);
    if (!dev.read(backup_block * b, one.span())) continue;
    auto backup = decode_superblock(one.span(), backup_block);
    if (backup && backup->geometry.block_size == b) {
      LUNFS_TRY(check_features(*backup, false));
      return LocatedSuperblock{*backup, primary.status().message(), backup_block};
    }
  }
  if (get<uint32_t>(buf.span(), 0) == kMagic) {
    return lunfs::error(EUCLEAN, "primary superblock damaged (" + primary.status().message() +
                                     ") and no valid backup superblock at the end of the device");
  }
  return not_lunfs(dev, "no lunfs superblock at byte 65536");
}

}  // namespace lunfs

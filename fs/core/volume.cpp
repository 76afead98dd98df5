// Volume: shared mount state; see volume.h.
#include "fs/core/volume.h"

#include <cstdio>

#include "fs/core/glops.h"
#include "fs/core/inode.h"

namespace lunfs {

Volume::Volume(BlockDevice& dev_in, MetadataLog& log_in, const ondisk::Superblock& sb_in, LockManager& lm,
               uint32_t slot_in, bool read_only_in)
    : dev(dev_in),
      log(log_in),
      sb(sb_in),
      g(sb.geometry),
      bs(sb.geometry.block_size),
      slot(slot_in),
      read_only(read_only_in),
      cache(dev_in, log_in, sb.geometry.block_size, 65536),
      glocks(lm, glops_for, this, [this](const std::string& why) { withdraw(why); }),
      alloc(sb, cache, log_in, glocks, slot_in, [this](const std::string& why) { withdraw(why); }),
      inodes(std::make_unique<InodeCache>(*this)) {}

void Volume::log_line(const std::string& line) const {
  if (logger) {
    logger(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

void Volume::withdraw(const std::string& why) {
  if (!withdrawn.exchange(true)) {
    log_line("lunfs: withdrawing (read-only from now on): " + why);
  }
}

Status Volume::check_writable() const {
  if (read_only) return error(EROFS, "mounted read-only");
  if (withdrawn) return error(EROFS, "file system withdrawn after damage to shared metadata");
  return Status::ok();
}

}  // namespace lunfs

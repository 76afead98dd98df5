// Signature detection from the first 128 KiB of a device.
#include "fs/format/signature.h"

#include <algorithm>
#include <cstring>
#include <string_view>

#include "fs/device/aligned_buffer.h"
#include "fs/format/ondisk.h"

namespace lunfs {

namespace {

bool has(const AlignedBuffer& buf, uint64_t off, std::string_view magic) {
  return off + magic.size() <= buf.size() && std::memcmp(buf.data() + off, magic.data(), magic.size()) == 0;
}

uint32_t be32(const AlignedBuffer& buf, uint64_t off) {
  const auto* p = reinterpret_cast<const uint8_t*>(buf.data() + off);
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

}  // namespace

Result<std::vector<Signature>> detect_signatures(BlockDevice& dev) {
  uint64_t len = std::min<uint64_t>(kSignatureWipeHead, dev.size_bytes());
  len -= len % dev.io_alignment();
  AlignedBuffer buf(kSignatureWipeHead);
  if (len > 0) LUNFS_TRY(dev.read(0, std::span(buf.data(), len)));
  std::vector<Signature> found;
  auto add = [&](std::string what, uint64_t off) { found.push_back({std::move(what), off}); };

  const uint64_t sb = ondisk::kSuperblockOffset;
  if (ondisk::get<uint32_t>(buf.span(), sb) == ondisk::kMagic &&
      ondisk::get<uint16_t>(buf.span(), sb + 4) == static_cast<uint16_t>(ondisk::BlockType::kSuperblock)) {
    add("lunfs file system", sb);
  }
  if (ondisk::get<uint16_t>(buf.span(), 1080) == 0xEF53) {
    uint32_t incompat = ondisk::get<uint32_t>(buf.span(), 1024 + 0x60);
    uint32_t compat = ondisk::get<uint32_t>(buf.span(), 1024 + 0x5C);
    const char* kind = (incompat & 0x40 /*extents*/) ? "ext4" : (compat & 0x4 /*journal*/) ? "ext3" : "ext2";
    add(std::string(kind) + " file system", 1080);
  }
  if (has(buf, 0, "XFSB")) add("XFS file system", 0);
  if (has(buf, 65536 + 64, "_BHRfS_M")) add("Btrfs file system", 65536 + 64);
  if (be32(buf, 65536) == 0x01161970 && be32(buf, 65536 + 4) == 1) add("GFS2 file system", 65536);
  for (uint64_t bs : {512, 1024, 2048, 4096}) {
    if (has(buf, 2 * bs, "OCFSV2")) {
      add("OCFS2 file system", 2 * bs);
      break;
    }
  }
  for (uint64_t sector = 0; sector < 4; ++sector) {
    if (has(buf, sector * 512, "LABELONE") && has(buf, sector * 512 + 24, "LVM2 001")) {
      add("LVM2 physical volume", sector * 512);
    }
  }
  if (has(buf, 0, "LUKS\xba\xbe")) add("LUKS encrypted volume", 0);
  if (has(buf, 4096 - 10, "SWAPSPACE2") || has(buf, 4096 - 10, "SWAP-SPACE")) add("Linux swap", 4086);
  if (has(buf, 512, "EFI PART") || has(buf, 4096, "EFI PART")) {
    add("GPT partition table", has(buf, 512, "EFI PART") ? 512 : 4096);
  } else if (ondisk::get<uint16_t>(buf.span(), 510) == 0xAA55 && found.empty()) {
    add("DOS partition table or boot sector", 510);
  }
  return found;
}

}  // namespace lunfs

// Inode codec. Offsets: docs/format.md, "Inodes".
#include "fs/format/inode_format.h"

#include <algorithm>

namespace lunfs::ondisk {

void encode_inode(const Inode& ino, std::span<std::byte> b, uint64_t blocknr, uint64_t sequence,
                  uint64_t seed) {
  std::fill(b.begin(), b.end(), std::byte{0});
  put<uint32_t>(b, 32, ino.mode);
  put<uint32_t>(b, 36, ino.uid);
  put<uint32_t>(b, 40, ino.gid);
  put<uint32_t>(b, 44, ino.nlink);
  put<uint64_t>(b, 48, ino.size);
  put<uint64_t>(b, 56, ino.blocks);
  const Timespec* times[] = {&ino.atime, &ino.mtime, &ino.ctime, &ino.crtime};
  for (int i = 0; i < 4; ++i) {
    put<int64_t>(b, 64 + 8 * i, times[i]->sec);
    put<uint32_t>(b, 96 + 4 * i, times[i]->nsec);
  }
  put<uint64_t>(b, 112, ino.generation);
  put<uint32_t>(b, 120, ino.flags);
  size_t content = std::min(ino.content.size(), b.size() - kInodeContentOffset);
  put<uint32_t>(b, 124, static_cast<uint32_t>(content));
  put<uint64_t>(b, 128, ino.rdev);
  put<uint64_t>(b, 136, ino.xattr_block);
  put<uint64_t>(b, 144, ino.parent);
  put<uint32_t>(b, 152, ino.dir_depth);
  put<uint64_t>(b, 160, ino.dir_entries);
  if (content > 0) std::memcpy(b.data() + kInodeContentOffset, ino.content.data(), content);
  seal_block(b, BlockType::kInode, blocknr, sequence, seed);
}

Result<Inode> decode_inode(std::span<const std::byte> b, uint64_t blocknr, uint64_t seed,
                           const Geometry& g) {
  LUNFS_TRY(verify_block(b, BlockType::kInode, blocknr, seed));
  auto bad = [&](const std::string& what) { return corrupt(BlockType::kInode, blocknr, what); };
  Inode ino;
  ino.mode = get<uint32_t>(b, 32);
  ino.uid = get<uint32_t>(b, 36);
  ino.gid = get<uint32_t>(b, 40);
  ino.nlink = get<uint32_t>(b, 44);
  ino.size = get<uint64_t>(b, 48);
  ino.blocks = get<uint64_t>(b, 56);
  Timespec* times[] = {&ino.atime, &ino.mtime, &ino.ctime, &ino.crtime};
  for (int i = 0; i < 4; ++i) {
    times[i]->sec = get<int64_t>(b, 64 + 8 * i);
    times[i]->nsec = get<uint32_t>(b, 96 + 4 * i);
    if (times[i]->nsec >= 1000000000u) return bad("timestamp nanoseconds out of range");
  }
  ino.generation = get<uint64_t>(b, 112);
  ino.flags = get<uint32_t>(b, 120);
  uint32_t content = get<uint32_t>(b, 124);
  ino.rdev = get<uint64_t>(b, 128);
  ino.xattr_block = get<uint64_t>(b, 136);
  ino.parent = get<uint64_t>(b, 144);
  ino.dir_depth = get<uint32_t>(b, 152);
  ino.dir_entries = get<uint64_t>(b, 160);

  if (content > b.size() - kInodeContentOffset) return bad("content length beyond the block");
  ino.content.assign(reinterpret_cast<const uint8_t*>(b.data()) + kInodeContentOffset,
                     reinterpret_cast<const uint8_t*>(b.data()) + kInodeContentOffset + content);

  uint32_t type = ino.mode & S_IFMT;
  bool is_dir = type == S_IFDIR, is_reg = type == S_IFREG, is_lnk = type == S_IFLNK;
  if (!(is_dir || is_reg || is_lnk || type == S_IFCHR || type == S_IFBLK || type == S_IFIFO ||
        type == S_IFSOCK)) {
    return bad("unknown file type in mode " + std::to_string(ino.mode));
  }
  if (ino.flags & ~kInodeKnownFlags) return bad("unknown inode flags");
  int layouts = !!(ino.flags & kInodeInlineData) + !!(ino.flags & kInodeExtents) +
                !!(ino.flags & kInodeInlineDir);
  if (layouts > 1) return bad("more than one content layout flag");
  if ((ino.flags & kInodeInlineDir) && !is_dir) return bad("inline directory flag on a non-directory");
  if ((ino.flags & kInodeHashedDir) && !(is_dir && (ino.flags & kInodeExtents))) {
    return bad("hashed directory flag without a directory extent tree");
  }
  if (is_dir && layouts == 0) return bad("directory without a content layout");
  if ((ino.flags & kInodeInlineData) && ino.size != content) {
    return bad("inline data length differs from the file size");
  }
  if (ino.dir_depth > 24) return bad("directory hash depth above 24");
  if (ino.xattr_block != 0 && g.rgrp_of(ino.xattr_block) < 0) {
    return bad("xattr block " + std::to_string(ino.xattr_block) + " outside the data area");
  }
  if (is_dir && g.rgrp_of(ino.parent) < 0) return bad("parent directory outside the data area");
  if (ino.generation == 0) return bad("generation 0");
  return ino;
}

}  // namespace lunfs::ondisk

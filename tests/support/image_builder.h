// Builds small, consistent lunfs images in memory for tests of the format and of fsck,
// independently of the file-system core: directories (inline and hashed), files with
// extent trees of depth 0 and 1, symlinks, xattrs. Allocation is from resource group 0.
// finish() writes every structure; tests then corrupt chosen blocks and run fsck.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fs/device/block_device.h"
#include "fs/format/dir_format.h"
#include "fs/format/extent_format.h"
#include "fs/format/inode_format.h"
#include "fs/format/rgrp_format.h"
#include "fs/format/superblock.h"
#include "fs/format/xattr_format.h"
#include "mkfs/formatter.h"

namespace lunfs::testing {

class ImageBuilder {
 public:
  // Formats a memory device of `bytes` (default options: 2 journals of 8 MiB, 4 KiB blocks).
  explicit ImageBuilder(uint64_t bytes = 256ull << 20, MkfsOptions options = default_options());
  static MkfsOptions default_options();

  BlockDevice& device() { return *dev_; }
  const ondisk::Superblock& sb() const { return sb_; }
  uint64_t root() const { return sb_.root_inode; }

  uint64_t mkdir(uint64_t parent, const std::string& name);
  // A directory stored as a depth-1 hash table with two leaves.
  uint64_t mkdir_hashed(uint64_t parent, const std::string& name);
  // A regular file with `runs` extents of `run_blocks` each; `tree_depth` 0 keeps them in
  // the inode, 1 puts them in an extent node block.
  uint64_t create_file(uint64_t dir, const std::string& name, uint32_t runs = 2,
                       uint32_t run_blocks = 3, uint16_t tree_depth = 0);
  uint64_t symlink(uint64_t dir, const std::string& name, const std::string& target);
  void link(uint64_t dir, const std::string& name, uint64_t target);
  void set_xattr(uint64_t ino, const std::string& name, const std::string& value);

  // Writes everything: inodes, directory blocks, extent nodes, xattrs, rgrp 0's bitmap and
  // header, and the master statfs.
  void finish();

  // Where things ended up (valid after finish()).
  uint64_t extent_node_of(uint64_t ino) const { return extent_nodes_.at(ino); }
  uint64_t xattr_block_of(uint64_t ino) const { return inodes_.at(ino).xattr_block; }
  const std::vector<uint64_t>& leaves_of(uint64_t dir) const { return hashed_.at(dir).leaves; }
  const ondisk::Inode& inode(uint64_t ino) const { return inodes_.at(ino); }
  std::vector<ondisk::Extent> extents_of(uint64_t ino) const { return file_extents_.at(ino); }

  // Block-level helpers for corruption tests.
  std::vector<std::byte> read_block(uint64_t block);
  void write_block(uint64_t block, const std::vector<std::byte>& data);
  void flip_bit(uint64_t block, size_t bit);
  // Re-seals a block after a test edited its body, so only the semantic damage remains.
  void reseal(uint64_t block);

  uint64_t alloc(ondisk::BlockState state, uint32_t count = 1);

 private:
  struct Hashed {
    uint64_t table = 0;
    std::vector<uint64_t> leaves;
  };
  uint64_t new_inode(uint32_t mode, uint64_t parent);
  void add_entry(uint64_t dir, const std::string& name, uint64_t target);

  std::unique_ptr<BlockDevice> dev_;
  ondisk::Superblock sb_;
  ondisk::RgrpLocation rg0_;
  std::vector<ondisk::BlockState> states_;  // rgrp 0 data blocks
  std::map<uint64_t, ondisk::Inode> inodes_;
  std::map<uint64_t, std::vector<ondisk::DirEntry>> entries_;
  std::map<uint64_t, std::vector<ondisk::Extent>> file_extents_;
  std::map<uint64_t, uint16_t> tree_depth_;
  std::map<uint64_t, uint64_t> extent_nodes_;
  std::map<uint64_t, Hashed> hashed_;
  std::map<uint64_t, std::vector<ondisk::Xattr>> xattrs_;
  uint64_t next_generation_ = 2;
};

}  // namespace lunfs::testing

// ImageBuilder: consistent test images without the file-system core.
#include "tests/support/image_builder.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cassert>
#include <stdexcept>

#include "fs/device/aligned_buffer.h"
#include "fs/format/slot_format.h"

namespace lunfs::testing {

using namespace ondisk;

namespace {
void check(const Status& st) {
  if (!st) throw std::runtime_error(st.to_string());
}
}  // namespace

MkfsOptions ImageBuilder::default_options() {
  MkfsOptions o;
  o.cluster_name = "test";
  o.fs_name = "fs";
  o.journals = 2;
  o.journal_mib = 8;
  o.uuid = std::array<uint8_t, 16>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  o.now_sec = 1700000000;
  return o;
}

ImageBuilder::ImageBuilder(uint64_t bytes, MkfsOptions options) : dev_(make_memory_device(bytes)) {
  auto sb = plan_filesystem(*dev_, options);
  if (!sb) throw std::runtime_error(sb.status().to_string());
  sb_ = *sb;
  check(write_filesystem(*dev_, sb_));
  rg0_ = sb_.geometry.rgrp(0);
  states_.assign(rg0_.data_blocks, BlockState::kFree);
  states_[0] = BlockState::kDinode;
  AlignedBuffer one(sb_.geometry.block_size);
  check(dev_->read(sb_.root_inode * one.size(), one.span()));
  auto root = decode_inode(one.span(), sb_.root_inode, sb_.csum_seed, sb_.geometry);
  if (!root) throw std::runtime_error(root.status().to_string());
  inodes_[sb_.root_inode] = *root;
  entries_[sb_.root_inode] = {};
}

uint64_t ImageBuilder::alloc(BlockState state, uint32_t count) {
  for (uint32_t i = 0; i + count <= states_.size(); ++i) {
    bool free_run = std::all_of(states_.begin() + i, states_.begin() + i + count,
                                [](BlockState s) { return s == BlockState::kFree; });
    if (free_run) {
      std::fill(states_.begin() + i, states_.begin() + i + count, state);
      return rg0_.first_data + i;
    }
  }
  throw std::runtime_error("image builder: resource group 0 is full");
}

uint64_t ImageBuilder::new_inode(uint32_t mode, uint64_t parent) {
  uint64_t ino = alloc(BlockState::kDinode);
  Inode inode;
  inode.mode = mode;
  inode.nlink = 0;
  inode.generation = next_generation_++;
  inode.atime = inode.mtime = inode.ctime = inode.crtime = {1700000000, 5};
  if ((mode & S_IFMT) == S_IFDIR) {
    inode.flags = kInodeInlineDir;
    inode.parent = parent;
    inode.nlink = 2;
    entries_[ino] = {};
  }
  inodes_[ino] = inode;
  return ino;
}

void ImageBuilder::add_entry(uint64_t dir, const std::string& name, uint64_t target) {
  const Inode& t = inodes_.at(target);
  uint8_t type = S_ISDIR(t.mode) ? DT_DIR : S_ISLNK(t.mode) ? DT_LNK : DT_REG;
  entries_.at(dir).push_back({target, dir_name_hash(sb_.dir_hash_seed, name), type, name});
  if (S_ISDIR(t.mode)) {
    inodes_.at(dir).nlink += 1;
  } else {
    inodes_.at(target).nlink += 1;
  }
}

uint64_t ImageBuilder::mkdir(uint64_t parent, const std::string& name) {
  uint64_t ino = new_inode(S_IFDIR | 0755, parent);
  add_entry(parent, name, ino);
  return ino;
}

uint64_t ImageBuilder::mkdir_hashed(uint64_t parent, const std::string& name) {
  uint64_t ino = mkdir(parent, name);
  Hashed h;
  h.table = alloc(BlockState::kUsed);
  h.leaves = {alloc(BlockState::kUsed), alloc(BlockState::kUsed)};
  hashed_[ino] = h;
  Inode& inode = inodes_.at(ino);
  inode.flags = kInodeExtents | kInodeHashedDir;
  inode.dir_depth = 1;
  ExtentNode root;
  root.extents.push_back({0, h.table, 1, 0});
  inode.content = encode_extent_root(root, sb_.geometry.block_size);
  inode.blocks = 3;
  return ino;
}

uint64_t ImageBuilder::create_file(uint64_t dir, const std::string& name, uint32_t runs,
                                   uint32_t run_blocks, uint16_t tree_depth) {
  uint64_t ino = new_inode(S_IFREG | 0644, 0);
  std::vector<Extent> extents;
  for (uint32_t r = 0; r < runs; ++r) {
    uint64_t phys = alloc(BlockState::kUsed, run_blocks);
    extents.push_back({uint64_t{r} * run_blocks * 2, phys, run_blocks, 0});  // holes between runs
  }
  Inode& inode = inodes_.at(ino);
  inode.flags = kInodeExtents;
  inode.size = extents.empty() ? 0 : extents.back().logical_end() * sb_.geometry.block_size;
  inode.blocks = uint64_t{runs} * run_blocks;
  file_extents_[ino] = extents;
  tree_depth_[ino] = tree_depth;
  if (tree_depth == 1) {
    extent_nodes_[ino] = alloc(BlockState::kUsed);
    inode.blocks += 1;
  }
  add_entry(dir, name, ino);
  return ino;
}

uint64_t ImageBuilder::symlink(uint64_t dir, const std::string& name, const std::string& target) {
  uint64_t ino = new_inode(S_IFLNK | 0777, 0);
  Inode& inode = inodes_.at(ino);
  inode.flags = kInodeInlineData;
  inode.size = target.size();
  inode.content.assign(target.begin(), target.end());
  add_entry(dir, name, ino);
  return ino;
}

void ImageBuilder::link(uint64_t dir, const std::string& name, uint64_t target) { add_entry(dir, name, target); }

void ImageBuilder::set_xattr(uint64_t ino, const std::string& name, const std::string& value) {
  Inode& inode = inodes_.at(ino);
  if (inode.xattr_block == 0) {
    inode.xattr_block = alloc(BlockState::kUsed);
    inode.blocks += 1;
  }
  xattrs_[ino].push_back({XattrNamespace::kUser, name, value});
}

void ImageBuilder::finish() {
  const uint32_t bs = sb_.geometry.block_size;
  const uint64_t seed = sb_.csum_seed;
  AlignedBuffer one(bs);
  auto write = [&](uint64_t block) { check(dev_->write(block * bs, one.span())); };
  auto by_hash = [](const DirEntry& a, const DirEntry& b) {
    return std::tie(a.hash, a.name) < std::tie(b.hash, b.name);
  };

  for (auto& [ino, inode] : inodes_) {
    if (S_ISDIR(inode.mode)) {
      auto entries = entries_.at(ino);
      std::sort(entries.begin(), entries.end(), by_hash);
      inode.dir_entries = entries.size();
      if (auto h = hashed_.find(ino); h != hashed_.end()) {
        DirHashBlock table{ino, 0, h->second.leaves};
        encode_dir_hash(table, one.span(), h->second.table, 0, seed);
        write(h->second.table);
        for (uint32_t prefix = 0; prefix < 2; ++prefix) {
          DirLeaf leaf;
          leaf.owner = ino;
          leaf.depth = 1;
          leaf.hash_prefix = prefix;
          for (const auto& e : entries) {
            if ((e.hash >> 31) == prefix) leaf.entries.push_back(e);
          }
          encode_dir_leaf(leaf, one.span(), h->second.leaves[prefix], 0, seed);
          write(h->second.leaves[prefix]);
        }
      } else {
        inode.content = encode_dir_entries(entries);
      }
    }
    if (auto f = file_extents_.find(ino); f != file_extents_.end()) {
      ExtentNode leaf;
      leaf.extents = f->second;
      if (tree_depth_.at(ino) == 1) {
        uint64_t node = extent_nodes_.at(ino);
        encode_extent_node(leaf, ino, one.span(), node, 0, seed);
        write(node);
        ExtentNode root;
        root.depth = 1;
        root.children.push_back({0, node});
        inode.content = encode_extent_root(root, bs);
      } else {
        inode.content = encode_extent_root(leaf, bs);
      }
    }
    if (auto x = xattrs_.find(ino); x != xattrs_.end()) {
      XattrBlock block{ino, x->second};
      std::sort(block.entries.begin(), block.entries.end(),
                [](const Xattr& a, const Xattr& b) { return std::tie(a.ns, a.name) < std::tie(b.ns, b.name); });
      encode_xattr_block(block, one.span(), inode.xattr_block, 0, seed);
      write(inode.xattr_block);
    }
    encode_inode(inode, one.span(), ino, 0, seed);
    write(ino);
  }

  RgrpHeader header;
  header.index = 0;
  header.first_data = rg0_.first_data;
  header.data_blocks = rg0_.data_blocks;
  header.bitmap_blocks = rg0_.bitmap_blocks;
  header.next_generation = next_generation_;
  const uint32_t per = Geometry::blocks_per_bitmap(bs);
  for (uint32_t b = 0; b < rg0_.bitmap_blocks; ++b) {
    BitmapBlock bm;
    bm.rgrp = 0;
    bm.bitmap_index = b;
    bm.bits.assign(bs - kBitmapDataOffset, 0);
    for (uint32_t i = b * per; i < std::min<uint32_t>((b + 1) * per, rg0_.data_blocks); ++i) {
      bm.set(i - b * per, states_[i]);
    }
    encode_bitmap(bm, one.span(), rg0_.header + 1 + b, 0, seed);
    write(rg0_.header + 1 + b);
  }
  for (BlockState s : states_) {
    header.free_blocks += s == BlockState::kFree;
    header.dinodes += s == BlockState::kDinode;
    header.unlinked += s == BlockState::kUnlinked;
  }
  encode_rgrp_header(header, one.span(), rg0_.header, 0, seed);
  write(rg0_.header);

  int64_t used = static_cast<int64_t>(rg0_.data_blocks - header.free_blocks);
  Statfs master;
  master.free_blocks = static_cast<int64_t>(sb_.geometry.data_blocks_total()) - used;
  master.dinodes = header.dinodes;
  encode_statfs(master, one.span(), sb_.geometry.statfs_block, seed);
  write(sb_.geometry.statfs_block);
  check(dev_->flush());
}

std::vector<std::byte> ImageBuilder::read_block(uint64_t block) {
  std::vector<std::byte> data(sb_.geometry.block_size);
  check(dev_->read(block * data.size(), data));
  return data;
}

void ImageBuilder::write_block(uint64_t block, const std::vector<std::byte>& data) {
  check(dev_->write(block * data.size(), data));
}

void ImageBuilder::flip_bit(uint64_t block, size_t bit) {
  auto data = read_block(block);
  data[bit / 8] ^= std::byte(1u << (bit % 8));
  write_block(block, data);
}

void ImageBuilder::reseal(uint64_t block) {
  auto data = read_block(block);
  BlockHeader h = peek_header(data);
  seal_block(data, h.type, h.blocknr, h.sequence, h.type == BlockType::kSuperblock ? 0 : sb_.csum_seed);
  write_block(block, data);
}

}  // namespace lunfs::testing

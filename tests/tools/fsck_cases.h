// The named corruption cases of fsck's tests: a populated image (ImageBuilder) and the
// ways to damage it, each with the phrase fsck must report and the files whose contents the
// damage destroys. fsck_test.cpp checks the reports, fsck_repair_test.cpp the repairs.
#pragma once

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "fs/format/ondisk.h"
#include "fs/format/rgrp_format.h"
#include "tests/support/image_builder.h"

namespace lunfs::testing {

using namespace lunfs::ondisk;

// A populated image: nested directories (inline and hashed), files with depth-0 and
// depth-1 extent trees, a hard link, a symlink, xattrs.
struct Populated {
  ImageBuilder b;
  uint64_t images, hashed, disk0, disk1, config, link;
  std::vector<uint64_t> isos;
  explicit Populated(uint64_t bytes = 256ull << 20) : b(bytes) {
    images = b.mkdir(b.root(), "images");
    hashed = b.mkdir_hashed(b.root(), "isos");
    disk0 = b.create_file(images, "disk0.raw", 3, 4, 0);
    disk1 = b.create_file(images, "disk1.qcow2", 5, 2, 1);
    config = b.create_file(b.root(), "vm.xml", 1, 1, 0);
    b.link(hashed, "disk0-hardlink", disk0);
    for (int i = 0; i < 40; ++i) isos.push_back(b.create_file(hashed, "iso-" + std::to_string(i) + ".iso", 1, 1, 0));
    link = b.symlink(b.root(), "latest", "images/disk1.qcow2");
    b.set_xattr(disk1, "vm", "web01");
    b.mkdir(images, "snapshots");
    b.finish();
    files = {{"/images/disk0.raw", disk0}, {"/isos/disk0-hardlink", disk0}, {"/images/disk1.qcow2", disk1},
             {"/vm.xml", config}};
    for (int i = 0; i < 40; ++i) files.push_back({"/isos/iso-" + std::to_string(i) + ".iso", isos[i]});
    for (const auto& [path, ino] : files) fill(ino);
  }

  // Each data block of a file holds bytes that depend on its inode and logical block, so
  // a block read from the wrong place shows.
  static std::byte data_byte(uint64_t ino, uint64_t logical, size_t i) {
    return static_cast<std::byte>((ino * 7 + logical * 13 + i) % 251);
  }
  void fill(uint64_t ino) {
    const uint32_t bs = b.sb().geometry.block_size;
    for (const auto& e : b.extents_of(ino)) {
      for (uint32_t k = 0; k < e.length; ++k) {
        std::vector<std::byte> data(bs);
        for (size_t i = 0; i < bs; ++i) data[i] = data_byte(ino, e.logical + k, i);
        b.write_block(e.physical + k, data);
      }
    }
  }
  // What a file reads as: its bytes where it has extents, zeros in its holes.
  std::string content(uint64_t ino) {
    const uint32_t bs = b.sb().geometry.block_size;
    std::string s(b.inode(ino).size, '\0');
    for (const auto& e : b.extents_of(ino)) {
      for (uint32_t k = 0; k < e.length; ++k) {
        for (size_t i = 0; i < bs && (e.logical + k) * bs + i < s.size(); ++i) {
          s[(e.logical + k) * bs + i] = static_cast<char>(data_byte(ino, e.logical + k, i));
        }
      }
    }
    return s;
  }

  std::vector<std::pair<std::string, uint64_t>> files;  // path, inode
};

// Each case damages the populated image one way and names what fsck must say.
struct Corruption {
  const char* name;
  std::function<void(Populated&)> damage;
  const char* expected;  // a phrase of the finding
  // Files (paths) whose contents the damage destroys; every other file must survive a
  // repair intact (perhaps moved to /lost+found).
  std::vector<std::string> lost = {};
};
inline void PrintTo(const Corruption& c, std::ostream* os) { *os << c.name; }

// Edits a decoded structure's body bytes and reseals, leaving only the semantic damage.
inline void edit(Populated& p, uint64_t block, size_t offset, uint64_t value, size_t width) {
  auto data = p.b.read_block(block);
  std::memcpy(data.data() + offset, &value, width);
  p.b.write_block(block, data);
  p.b.reseal(block);
}

inline uint64_t rg0_header(Populated& p) { return p.b.sb().geometry.rgrp(0).header; }
inline uint64_t rg0_bitmap(Populated& p) { return rg0_header(p) + 1; }
inline uint32_t rg0_index(Populated& p, uint64_t block) { return static_cast<uint32_t>(block - p.b.sb().geometry.rgrp(0).first_data); }

inline void set_state(Populated& p, uint64_t block, BlockState s) {
  uint32_t i = rg0_index(p, block);
  auto data = p.b.read_block(rg0_bitmap(p));
  auto& byte = reinterpret_cast<uint8_t&>(data[kBitmapDataOffset + i / 4]);
  byte = static_cast<uint8_t>((byte & ~(3u << (i % 4 * 2))) | (static_cast<unsigned>(s) << (i % 4 * 2)));
  p.b.write_block(rg0_bitmap(p), data);
  p.b.reseal(rg0_bitmap(p));
}

inline std::vector<Corruption> corruption_cases() {
  return {
        Corruption{"primary_superblock_bit_flip", [](Populated& p) { p.b.flip_bit(p.b.sb().geometry.sb_block, 3000); },
                 "primary superblock damaged"},
      Corruption{"backup_superblock_bit_flip", [](Populated& p) { p.b.flip_bit(p.b.sb().geometry.backup_sb_block, 9000); },
                 "backup superblock"},
      Corruption{"backup_superblock_differs",
                 [](Populated& p) { edit(p, p.b.sb().geometry.backup_sb_block, 88, 0x41, 1); },  // label
                 "differs from the primary"},
      Corruption{"slot_header_bit_flip", [](Populated& p) { p.b.flip_bit(p.b.sb().geometry.slot_header(1), 400); },
                 "slot 1: slot header block"},
      Corruption{"every_slot_header_bit_flip",
                 [](Populated& p) {
                   for (uint32_t s = 0; s < p.b.sb().geometry.journal_count; ++s) {
                     p.b.flip_bit(p.b.sb().geometry.slot_header(s), 400);
                   }
                 },
                 "slot 0: slot header block"},
      Corruption{"heartbeat_zeroed",
                 [](Populated& p) { p.b.write_block(p.b.sb().geometry.heartbeat(0), std::vector<std::byte>(4096)); },
                 "block is empty"},
      Corruption{"statfs_wrong_total", [](Populated& p) { edit(p, p.b.sb().geometry.statfs_block, 40, 12345, 8); },
                 "statfs: master plus slot deltas"},
      Corruption{"rgrp_header_bit_flip", [](Populated& p) { p.b.flip_bit(rg0_header(p), 500); },
                 "resource group header block"},
      Corruption{"rgrp_free_count_wrong", [](Populated& p) { edit(p, rg0_header(p), 56, 17, 4); },
                 "header counts 17 free blocks"},
      Corruption{"rgrp_inode_count_wrong",
                 [](Populated& p) {
                   auto h = p.b.read_block(rg0_header(p));
                   uint32_t dinodes;
                   std::memcpy(&dinodes, h.data() + 60, 4);
                   edit(p, rg0_header(p), 60, dinodes - 1, 4);
                 },
                 "inode blocks, the bitmap"},
      Corruption{"bitmap_bit_flip", [](Populated& p) { p.b.flip_bit(rg0_bitmap(p), 8 * 100); },
                 "allocation bitmap block"},
      Corruption{"inode_checksum", [](Populated& p) { p.b.flip_bit(p.disk0, 8 * 40); }, "inode block", {"/images/disk0.raw", "/isos/disk0-hardlink"}},
      Corruption{"inode_link_count_wrong", [](Populated& p) { edit(p, p.disk0, 44, 1, 4); }, "link count 1"},
      Corruption{"inode_block_count_wrong", [](Populated& p) { edit(p, p.disk0, 56, 99, 8); }, "block count says 99"},
      Corruption{"inode_unknown_file_type", [](Populated& p) { edit(p, p.config, 32, 0170644, 4); }, "unknown file type", {"/vm.xml"}},
      Corruption{"extent_points_at_free_block",
                 [](Populated& p) { set_state(p, p.b.extents_of(p.disk0)[1].physical, BlockState::kFree); },
                 "is marked free in the bitmap"},
      Corruption{"two_files_share_a_block",
                 [](Populated& p) {
                   // Point vm.xml's only extent at disk0's first block.
                   auto data = p.b.read_block(p.config);
                   uint64_t target = p.b.extents_of(p.disk0)[0].physical;
                   std::memcpy(data.data() + 256 + 8 + 8, &target, 8);
                   p.b.write_block(p.config, data);
                   p.b.reseal(p.config);
                 },
                 "is used twice", {"/vm.xml"}},
      Corruption{"leaked_block",
                 [](Populated& p) { set_state(p, p.b.sb().geometry.rgrp(0).first_data + 2000, BlockState::kUsed); },
                 "belong to no file"},
      Corruption{"extent_node_bit_flip", [](Populated& p) { p.b.flip_bit(p.b.extent_node_of(p.disk1), 8 * 60); },
                 "extent node block", {"/images/disk1.qcow2"}},
      Corruption{"extent_node_of_another_inode",
                 [](Populated& p) { edit(p, p.b.extent_node_of(p.disk1), 32, p.disk0, 8); }, "belongs to inode", {"/images/disk1.qcow2"}},
      Corruption{"dir_leaf_bit_flip", [](Populated& p) { p.b.flip_bit(p.b.leaves_of(p.hashed)[1], 8 * 100); },
                 "directory leaf block"},
      Corruption{"dir_leaf_in_wrong_slot",
                 [](Populated& p) {
                   // Swap the two leaves' hash prefixes.
                   edit(p, p.b.leaves_of(p.hashed)[0], 40, 1, 4);
                 },
                 "does not belong in this leaf's hash range"},
      Corruption{"dir_entry_points_at_non_inode",
                 [](Populated& p) {
                   // The config file's inode block is freed behind its entry's back.
                   set_state(p, p.config, BlockState::kFree);
                 },
                 "which is not an inode", {"/vm.xml"}},
      Corruption{"lost_file",
                 [](Populated& p) {
                   // Drop the root directory's entries: its inline content is emptied.
                   auto data = p.b.read_block(p.b.root());
                   uint32_t zero = 0;
                   uint64_t zero64 = 0;
                   std::memcpy(data.data() + 124, &zero, 4);
                   std::memcpy(data.data() + 160, &zero64, 8);
                   p.b.write_block(p.b.root(), data);
                   p.b.reseal(p.b.root());
                 },
                 "is in no directory"},
      Corruption{"dir_entry_bad_name",
                 [](Populated& p) {
                   // A '/' in the first name of the root's inline entries, behind a valid checksum.
                   auto data = p.b.read_block(p.b.root());
                   data[256 + 14] = std::byte{'/'};
                   p.b.write_block(p.b.root(), data);
                   p.b.reseal(p.b.root());
                 },
                 "invalid name"},
      Corruption{"directory_parent_wrong", [](Populated& p) { edit(p, p.images, 144, p.hashed, 8); },
                 "says its parent is"},
      Corruption{"xattr_block_bit_flip", [](Populated& p) { p.b.flip_bit(p.b.xattr_block_of(p.disk1), 8 * 50); },
                 "xattr block"},
      Corruption{"misdirected_write",
                 [](Populated& p) { p.b.write_block(p.disk0, p.b.read_block(p.config)); },
                 "says it belongs at block", {"/images/disk0.raw", "/isos/disk0-hardlink"}},
      Corruption{"block_from_an_older_file_system",
                 [](Populated& p) {
                   auto data = p.b.read_block(p.config);
                   seal_block(data, BlockType::kInode, p.config, 0, 0xdeadbeef);
                   p.b.write_block(p.config, data);
                 },
                 "checksum mismatch", {"/vm.xml"}},
      Corruption{"unlinked_inode_still_named",
                 [](Populated& p) { set_state(p, p.config, BlockState::kUnlinked); }, "which is marked unlinked"}};
}

}  // namespace lunfs::testing

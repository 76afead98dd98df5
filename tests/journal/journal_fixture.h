// A formatted in-memory file system for journal tests, and block images that say what they are.
#pragma once

#include <array>
#include <memory>

#include "fs/device/aligned_buffer.h"
#include "fs/device/block_device.h"
#include "fs/metadata_log.h"
#include "fs/format/ondisk.h"
#include "fs/format/superblock.h"
#include "mkfs/formatter.h"

namespace lunfs::journal::testing {

struct TestFs {
  std::unique_ptr<BlockDevice> dev;
  ondisk::Superblock sb;
  uint32_t bs() const { return sb.geometry.block_size; }
  // A free block of the data area to use as a "metadata block" in tests.
  uint64_t block(uint64_t i) const { return sb.geometry.rgrp(0).first_data + 256 + i; }

  static TestFs make(uint8_t uuid_byte = 7) {
    TestFs fs;
    fs.dev = make_memory_device(64ull << 20);
    MkfsOptions o;
    o.cluster_name = "test";
    o.fs_name = "jtest";
    o.journals = 2;
    o.journal_mib = 8;
    o.uuid = std::array<uint8_t, 16>{uuid_byte, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    o.now_sec = 1;
    fs.sb = plan_filesystem(*fs.dev, o).value();
    (void)write_filesystem(*fs.dev, fs.sb);
    return fs;
  }

  // A sealed inode-typed image of `block` whose body is filled with `fill`.
  std::shared_ptr<AlignedBuffer> image(uint64_t block, uint8_t fill) const {
    auto b = std::make_shared<AlignedBuffer>(bs());
    std::memset(b->data(), fill, bs());
    ondisk::seal_block(b->span(), ondisk::BlockType::kInode, block, 0, sb.csum_seed);
    return b;
  }
  TransactionRecord txn(std::initializer_list<std::pair<uint64_t, uint8_t>> blocks,
                        std::initializer_list<uint64_t> revokes = {}) const {
    TransactionRecord t;
    for (auto [b, fill] : blocks) t.blocks.push_back({b, image(b, fill)});
    t.revokes = revokes;
    return t;
  }
  // The fill byte at home (body byte 100), or -1 when the block is not an image we wrote.
  int home_fill(uint64_t block) const {
    AlignedBuffer b(bs());
    if (!dev->read(block * bs(), b.span())) return -2;
    if (!ondisk::verify_block(b.span(), ondisk::BlockType::kInode, block, sb.csum_seed)) return -1;
    return static_cast<int>(b.data()[100]);
  }
};

}  // namespace lunfs::journal::testing

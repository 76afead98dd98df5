// Fuzz harness body: one formatted disk built once, patched per input in a copy-on-write
// layer (tests/crash CrashImage), then replay, a second replay and fsck's journal check.
#include "tests/journal/fuzz_journal_input.h"

#include <map>
#include <memory>
#include <vector>

#include "fs/device/aligned_buffer.h"
#include "fs/format/slot_format.h"
#include "journal/check.h"
#include "journal/log_writer.h"
#include "journal/slot_tail.h"
#include "mkfs/formatter.h"
#include "tests/crash/crash_image.h"

namespace lunfs::journal::fuzz {

namespace {

struct Base {
  ondisk::Superblock sb;
  std::vector<std::byte> disk;
};

std::shared_ptr<AlignedBuffer> image(const ondisk::Superblock& sb, uint64_t block, uint8_t fill) {
  auto b = std::make_shared<AlignedBuffer>(sb.geometry.block_size);
  std::memset(b->data(), fill, b->size());
  ondisk::seal_block(b->span(), ondisk::BlockType::kInode, block, 0, sb.csum_seed);
  return b;
}

const Base& base() {
  static const Base* b = [] {
    auto* out = new Base;
    auto dev = make_memory_device(64ull << 20);
    MkfsOptions o;
    o.cluster_name = "fuzz";
    o.fs_name = "fuzz";
    o.journals = 2;
    o.journal_mib = 8;
    o.uuid = std::array<uint8_t, 16>{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};
    o.now_sec = 1;
    out->sb = plan_filesystem(*dev, o).value();
    (void)write_filesystem(*dev, out->sb);
    const JournalArea area = JournalArea::of(out->sb, 0);
    const uint64_t home = out->sb.geometry.rgrp(0).first_data + 300;
    // Transactions 1..3 at positions 0, 4 and 8 (descriptor, images, [revoke], commit).
    (void)write_transaction(*dev, area, 0, 1, {{home, image(out->sb, home, 1)}, {home + 1, image(out->sb, home + 1, 1)}}, {});
    (void)write_transaction(*dev, area, 4, 2, {{home, image(out->sb, home, 2)}}, {home + 1});
    (void)write_transaction(*dev, area, 8, 3, {{home + 2, image(out->sb, home + 2, 3)}}, {});
    out->disk.resize(dev->size_bytes());
    (void)dev->read(0, out->disk);
    return out;
  }();
  return *b;
}

}  // namespace

Outcome replay_patched_journal(const uint8_t* data, size_t size) {
  const Base& b = base();
  const ondisk::Geometry& g = b.sb.geometry;
  const uint32_t bs = g.block_size;
  Outcome out;

  // Gather the patched blocks, then lay them over the base image.
  std::map<uint64_t, std::vector<std::byte>> blocks;
  auto block = [&](uint64_t nr) -> std::vector<std::byte>& {
    auto& v = blocks[nr];
    if (v.empty()) v.assign(b.disk.begin() + nr * bs, b.disk.begin() + (nr + 1) * bs);
    return v;
  };
  if (size >= 2 && (data[0] & 0x80)) {
    auto& v = block(g.slot_header(0));
    auto header = ondisk::decode_slot_header(v, g.slot_header(0), b.sb.csum_seed, g);
    if (header) {
      header->tail_block = data[1] % 32;
      ondisk::encode_slot_header(*header, v, g.slot_header(0), b.sb.csum_seed);
    }
  }
  for (size_t i = 2; i + 5 <= size; i += 5) {
    const uint64_t nr = g.journal(0) + data[i] % 32;
    auto& v = block(nr);
    v[(data[i + 1] | data[i + 2] << 8) % bs] ^= std::byte{data[i + 3]};
    if (data[i + 4] & 1) {
      ondisk::BlockHeader h = ondisk::peek_header(v);
      ondisk::seal_block(v, h.type, h.blocknr, h.sequence, b.sb.csum_seed);
    }
  }
  crash::SectorLayer layer;
  for (const auto& [nr, v] : blocks) layer.put(nr * bs, v);
  crash::CrashImage disk(b.disk, std::move(layer));

  auto first = replay(disk, b.sb, 0);
  if (!first) {
    out.violation = "replay failed on a readable device: " + first.status().to_string();
    return out;
  }
  out.report = *first;
  if (first->end == LogEnd::kDamaged) {
    if (first->marked_clean) out.violation = "damaged journal marked clean";
    return out;
  }
  if (!first->marked_clean) out.violation = "journal not marked clean after replay";
  auto second = replay(disk, b.sb, 0);
  if (!second || second->transactions != 0 || second->end == LogEnd::kDamaged) {
    out.violation = "second replay not a no-op: " + (second ? second->to_string() : second.status().to_string());
  }
  JournalCheck check = check_journal(disk, b.sb, 0);
  if (check.dirty) out.violation = "journal still dirty after replay: " + check.findings.front().text;
  return out;
}

}  // namespace lunfs::journal::fuzz

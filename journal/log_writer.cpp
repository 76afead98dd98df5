// Transaction layout and the two-flush commit.
#include "journal/log_writer.h"

#include <algorithm>

namespace lunfs::journal {

namespace {
uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }
}  // namespace

uint64_t transaction_blocks(size_t images, size_t revokes, uint32_t block_size) {
  const uint64_t per = entries_per_block(block_size);
  return ceil_div(images, per) + images + ceil_div(revokes, per) + 1;
}

Status write_transaction(BlockDevice& dev, const JournalArea& area, uint64_t position,
                         uint64_t sequence, const std::vector<BlockImage>& images,
                         const std::vector<uint64_t>& revokes) {
  const uint32_t bs = area.block_size;
  const uint64_t per = entries_per_block(bs);
  const uint64_t body = transaction_blocks(images.size(), revokes.size(), bs) - 1;
  AlignedBuffer buf(body * bs);
  auto block = [&](uint64_t i) { return buf.span().subspan(i * bs, bs); };

  uint64_t i = 0;
  std::vector<uint64_t> targets;
  for (size_t first = 0; first < images.size(); first += per) {
    const size_t count = std::min<size_t>(per, images.size() - first);
    targets.clear();
    for (size_t k = 0; k < count; ++k) targets.push_back(images[first + k].blocknr);
    const uint64_t descriptor = i++;
    for (size_t k = 0; k < count; ++k) {
      std::copy_n(images[first + k].data->data(), bs, block(i++).data());
    }
    encode_list(block(descriptor), ondisk::BlockType::kLogDescriptor, area.id,
                area.absolute(position + descriptor), sequence, targets);
  }
  for (size_t first = 0; first < revokes.size(); first += per) {
    const size_t count = std::min<size_t>(per, revokes.size() - first);
    encode_list(block(i), ondisk::BlockType::kLogRevoke, area.id, area.absolute(position + i),
                sequence, std::span<const uint64_t>(revokes).subspan(first, count));
    ++i;
  }
  TxnHasher hasher(area.id.seed);
  for (uint64_t k = 0; k < body; ++k) hasher.add(block(k));

  // At most two writes: the log may wrap at the journal's end.
  const uint64_t until_end = area.blocks - area.wrap(position);
  const uint64_t first_part = std::min(body, until_end);
  LUNFS_TRY(dev.write(area.offset(position), buf.span().first(first_part * bs)));
  if (first_part < body) {
    LUNFS_TRY(dev.write(area.offset(position + first_part), buf.span().subspan(first_part * bs)));
  }
  LUNFS_TRY(dev.flush());

  AlignedBuffer commit(bs);
  encode_commit(commit.span(), area.id, area.absolute(position + body), sequence,
                static_cast<uint32_t>(body), hasher.digest(), static_cast<uint32_t>(images.size()),
                static_cast<uint32_t>(revokes.size()));
  LUNFS_TRY(dev.write(area.offset(position + body), commit.span()));
  return dev.flush();
}

}  // namespace lunfs::journal

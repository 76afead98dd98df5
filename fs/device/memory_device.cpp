// A sparse in-memory BlockDevice for unit tests: chunks are allocated on first write, so a
// "16 TiB" device costs only what a test writes to it.
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "fs/device/block_device.h"

namespace lunfs {

namespace {

class MemoryBlockDevice final : public BlockDevice {
 public:
  MemoryBlockDevice(uint64_t size, uint32_t alignment) : size_(size), alignment_(alignment) {}

  uint64_t size_bytes() const override { return size_; }
  uint32_t io_alignment() const override { return alignment_; }

  Status read(uint64_t offset, std::span<std::byte> buf) override {
    LUNFS_TRY(check(offset, buf.size()));
    std::lock_guard lock(mu_);
    for_each_piece(offset, buf.size(), [&](uint64_t chunk, size_t in_chunk, size_t pos, size_t n) {
      auto it = chunks_.find(chunk);
      if (it == chunks_.end()) {
        std::memset(buf.data() + pos, 0, n);
      } else {
        std::memcpy(buf.data() + pos, it->second.data() + in_chunk, n);
      }
    });
    return Status::ok();
  }

  Status write(uint64_t offset, std::span<const std::byte> buf) override {
    LUNFS_TRY(check(offset, buf.size()));
    std::lock_guard lock(mu_);
    for_each_piece(offset, buf.size(), [&](uint64_t chunk, size_t in_chunk, size_t pos, size_t n) {
      auto& data = chunks_[chunk];
      if (data.empty()) data.resize(kChunk);
      std::memcpy(data.data() + in_chunk, buf.data() + pos, n);
    });
    return Status::ok();
  }

  Status flush() override { return Status::ok(); }
  std::string describe() const override { return "memory device"; }

 private:
  static constexpr uint64_t kChunk = 4096;  // small: tests write scattered single blocks

  Status check(uint64_t offset, size_t len) const {
    if (offset % alignment_ || len % alignment_) return error(EINVAL, "unaligned memory-device I/O");
    if (offset > size_ || len > size_ - offset) return error(ENOSPC, "memory-device I/O beyond end");
    return Status::ok();
  }

  template <typename Fn>
  void for_each_piece(uint64_t offset, size_t len, Fn fn) {
    size_t pos = 0;
    while (pos < len) {
      uint64_t at = offset + pos;
      uint64_t chunk = at / kChunk;
      size_t in_chunk = at % kChunk;
      size_t n = std::min<size_t>(len - pos, kChunk - in_chunk);
      fn(chunk, in_chunk, pos, n);
      pos += n;
    }
  }

  uint64_t size_;
  uint32_t alignment_;
  std::mutex mu_;
  std::unordered_map<uint64_t, std::vector<std::byte>> chunks_;
};

}  // namespace

std::unique_ptr<BlockDevice> make_memory_device(uint64_t size_bytes, uint32_t alignment) {
  return std::make_unique<MemoryBlockDevice>(size_bytes, alignment);
}

}  // namespace lunfs

// The core under concurrent callers (the FUSE frontend runs 10 threads): creates, writes,
// reads and unlinks in parallel, parallel overwrites of one preallocated image, and
// parallel allocating writes to a thin image and to growing files (the paths that move
// data outside the metadata mutex). Labelled "core_threads" for the TSan build.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fs/core/filesystem.h"
#include "fsck/checker.h"
#include "mkfs/formatter.h"
#include "tests/core/fs_fixture.h"

namespace lunfs {
namespace {

TEST(CoreConcurrency, ParallelNamespaceAndDataOperations) {
  auto dev = make_memory_device(uint64_t{512} << 20);
  MkfsOptions o;
  o.cluster_name = "t";
  o.fs_name = "f";
  o.journals = 2;
  auto sb = plan_filesystem(*dev, o);
  ASSERT_TRUE(sb);
  ASSERT_TRUE(write_filesystem(*dev, *sb));
  WriteThroughLog log(*dev);
  NoLockManager lm;
  auto mounted = FileSystem::mount(*dev, log, lm, {});
  ASSERT_TRUE(mounted) << mounted.status().to_string();
  FileSystem& fs = **mounted;

  // A written 8 MiB image that two threads overwrite and two read, block-aligned.
  auto img = fs.mknod(fs.root(), "img", S_IFREG | 0644, 0, {});
  ASSERT_TRUE(img);
  std::string chunk(1 << 20, 'i');
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(fs.write(img->ino, uint64_t(i) << 20, std::as_bytes(std::span(chunk))));

  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto dir = fs.mkdir(fs.root(), 'd' + std::to_string(t), 0755, {});
      if (!dir) return (void)++failures;
      for (int i = 0; i < 150; ++i) {
        std::string name = 'f' + std::to_string(i);
        auto f = fs.mknod(dir->ino, name, S_IFREG | 0644, 0, {});
        if (!f) return (void)++failures;
        std::string data(1000 + i * 37, char('a' + t));
        if (!fs.write(f->ino, uint64_t(i) * 512, std::as_bytes(std::span(data)))) ++failures;
        std::string back(data.size(), '\0');
        auto n = fs.read(f->ino, uint64_t(i) * 512, std::as_writable_bytes(std::span(back)));
        if (!n || back != data) ++failures;
        if (i % 3 == 0 && !fs.unlink(dir->ino, name)) ++failures;
      }
    });
  }
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::string block(4096, char('0' + t));
      std::string back(4096, '\0');
      for (int i = 0; i < 400; ++i) {
        uint64_t off = uint64_t((i * 7 + t * 131) % 2048) * 4096;
        if (t < 2) {
          if (!fs.write(img->ino, off, std::as_bytes(std::span(block)))) ++failures;
        } else if (!fs.read(img->ino, off, std::as_writable_bytes(std::span(back)))) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_TRUE(fs.unmount());
  auto report = check_filesystem(*dev);
  ASSERT_TRUE(report);
  for (const auto& f : report->findings) {
    if (f.kind == FsckFinding::Kind::kError) ADD_FAILURE() << "fsck: " << f.text;
  }
}

// Block `block` of file `file` as the allocating-writes test writes it: every 8-byte word
// names both, so a misplaced, stale or torn block shows.
std::string block_pattern(uint64_t file, uint64_t block) {
  std::string out(4096, '\0');
  for (uint64_t w = 0; w < out.size() / 8; ++w) {
    const uint64_t word = (file << 48) ^ (block << 12) ^ w ^ 0x5a5a000000000000;
    std::memcpy(out.data() + w * 8, &word, 8);
  }
  return out;
}

// A thin image filled by four threads at once (4 KiB and 16 KiB writes in random order,
// into holes, as a guest's first pass does) while two threads grow files of their own with
// appends and a fifth reads the image: every byte right afterwards and after a remount,
// no reader ever sees anything but zeros or the final data (the free space held another
// file's bytes before), and fsck clean.
TEST(CoreConcurrency, ParallelAllocatingWrites) {
  testing::FsFixture fx({.device_bytes = uint64_t{96} << 20, .journal_mib = 8, .rgrp_mib = 32, .journal = true});
  ASSERT_TRUE(fx.ok());
  FileSystem& fs = fx.fs();
  // Junk in every free block: a file written until the disk is full, then deleted and the
  // deletion committed, so its blocks may be reused.
  {
    const uint64_t junk = fx.mkfile(fx.root(), "junk");
    std::string chunk(1 << 20, '#');
    for (uint64_t off = 0;; off += chunk.size()) {
      if (!fs.write(junk, off, std::as_bytes(std::span(chunk)))) break;
    }
    ASSERT_TRUE(fs.unlink(fx.root(), "junk"));
    ASSERT_TRUE(fs.sync());
  }
  constexpr uint64_t kImageBlocks = 2048, kGrowBlocks = 1024, kWriters = 4, kGrowers = 2;
  const uint64_t image = fx.mkfile(fx.root(), "image");
  std::vector<uint64_t> grown;
  for (uint64_t g = 0; g < kGrowers; ++g) grown.push_back(fx.mkfile(fx.root(), "grown" + std::to_string(g)));

  // The image's runs: 1 or 4 blocks, shuffled, dealt round-robin to the writers.
  std::vector<std::pair<uint64_t, uint64_t>> runs;
  for (uint64_t b = 0; b < kImageBlocks;) {
    const uint64_t n = (b / 4) % 3 == 0 && b + 4 <= kImageBlocks ? 4 : 1;
    runs.push_back({b, n});
    b += n;
  }
  std::shuffle(runs.begin(), runs.end(), std::mt19937_64(7));
  auto write_blocks = [&](uint64_t ino, uint64_t file, uint64_t first, uint64_t count) {
    std::string data;
    for (uint64_t b = first; b < first + count; ++b) data += block_pattern(file, b);
    auto n = fs.write(ino, first * 4096, std::as_bytes(std::span(data)));
    return n && *n == data.size();
  };

  std::atomic<int> failures{0};
  std::atomic<bool> writing{true};
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = t; i < runs.size(); i += kWriters) {
        if (!write_blocks(image, 0, runs[i].first, runs[i].second)) ++failures;
      }
    });
  }
  for (uint64_t g = 0; g < kGrowers; ++g) {
    threads.emplace_back([&, g] {
      for (uint64_t b = 0; b < kGrowBlocks; b += 16) {
        if (!write_blocks(grown[g], g + 1, b, 16)) ++failures;
      }
    });
  }
  std::atomic<int> stale_reads{0};
  std::thread reader([&] {
    std::mt19937_64 rng(11);
    std::string back(4096, '\0');
    const std::string zeros(4096, '\0');
    while (writing.load()) {
      const uint64_t b = rng() % kImageBlocks;
      auto n = fs.read(image, b * 4096, std::as_writable_bytes(std::span(back)));
      if (!n) ++failures;
      if (n && *n == 4096 && back != zeros && back != block_pattern(0, b)) ++stale_reads;
    }
  });
  for (auto& th : threads) th.join();
  writing = false;
  reader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(stale_reads.load(), 0) << "a reader saw bytes that were neither zeros nor the data written";

  auto verify = [&](const char* when) {
    FileSystem& mounted = fx.fs();
    auto check = [&](uint64_t ino, uint64_t file, uint64_t blocks) {
      auto attr = mounted.getattr(ino);
      ASSERT_TRUE(attr);
      EXPECT_EQ(attr->size, blocks * 4096) << when << ": file " << file;
      std::string back(4096, '\0');
      uint64_t bad = 0;
      for (uint64_t b = 0; b < blocks; ++b) {
        auto n = mounted.read(ino, b * 4096, std::as_writable_bytes(std::span(back)));
        if (!n || *n != 4096 || back != block_pattern(file, b)) ++bad;
      }
      EXPECT_EQ(bad, 0u) << when << ": blocks of file " << file << " not as written";
    };
    check(image, 0, kImageBlocks);
    for (uint64_t g = 0; g < kGrowers; ++g) check(grown[g], g + 1, kGrowBlocks);
  };
  verify("after the writes");
  ASSERT_TRUE(fs.unmount());
  fx.mount();
  ASSERT_TRUE(fx.ok());
  verify("after a remount");
  fx.expect_clean();
}

}  // namespace
}  // namespace lunfs

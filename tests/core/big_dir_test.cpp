// One directory with 1,000,000 entries at the core (memory device, 1 KiB blocks so that a
// million inode blocks take 1 GiB): create them all, look up a random sample, readdir the
// whole directory (exactly the created set), remove half, and fsck finds nothing wrong.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "tests/core/fs_fixture.h"

namespace lunfs {
namespace {

using testing::FsFixture;

constexpr uint32_t kEntries = 1000000;

std::string name_of(uint32_t i) { return 'f' + std::to_string(i); }

TEST(BigDirectory, OneMillionEntries) {
  FsFixture t({.device_bytes = uint64_t{3} << 30, .block_size = 1024, .rgrp_mib = 256});
  ASSERT_TRUE(t.ok());
  FileSystem& fs = t.fs();
  auto d = fs.mkdir(t.root(), "d", 0755, {});
  ASSERT_TRUE(d);
  std::vector<uint64_t> ino(kEntries);
  for (uint32_t i = 0; i < kEntries; ++i) {
    auto a = fs.mknod(d->ino, name_of(i), S_IFREG | 0644, 0, {});
    ASSERT_TRUE(a) << name_of(i) << ": " << a.status().to_string();
    ino[i] = a->ino;
  }
  std::mt19937 rng(42);
  for (int k = 0; k < 10000; ++k) {
    uint32_t i = rng() % kEntries;
    auto a = fs.lookup(d->ino, name_of(i));
    ASSERT_TRUE(a) << name_of(i);
    ASSERT_EQ(a->ino, ino[i]);
  }

  // readdir returns exactly the created names, each once, with their inodes.
  auto list_exact = [&](auto present) {
    std::vector<uint8_t> seen(kEntries, 0);
    uint64_t off = 0, listed = 0;
    for (;;) {
      size_t got = 0;
      ASSERT_TRUE(fs.readdir(d->ino, off, [&](const DirListing& l) {
        off = l.next_offset;
        ++got;
        if (l.name == "." || l.name == "..") return true;
        uint32_t i = static_cast<uint32_t>(std::stoul(l.name.substr(1)));
        EXPECT_TRUE(i < kEntries && present(i) && l.ino == ino[i] && seen[i]++ == 0) << l.name;
        ++listed;
        return got < 500;
      }));
      if (got == 0) break;
    }
    uint64_t expected = 0;
    for (uint32_t i = 0; i < kEntries; ++i) expected += present(i);
    EXPECT_EQ(listed, expected);
  };
  list_exact([](uint32_t) { return true; });

  for (uint32_t i = 0; i < kEntries; i += 2) ASSERT_TRUE(fs.unlink(d->ino, name_of(i))) << name_of(i);
  EXPECT_EQ(fs.lookup(d->ino, name_of(0)).err(), ENOENT);
  EXPECT_EQ(fs.lookup(d->ino, name_of(1))->ino, ino[1]);
  list_exact([](uint32_t i) { return i % 2 == 1; });
  t.expect_clean();
}

}  // namespace
}  // namespace lunfs

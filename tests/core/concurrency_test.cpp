// The core under concurrent callers (the FUSE frontend runs 10 threads): creates, writes,
// reads and unlinks in parallel, and parallel overwrites of one preallocated image (the
// path that runs outside the metadata mutex). Labelled "threads" for the TSan build.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fs/filesystem.h"
#include "fsck/checker.h"
#include "mkfs/formatter.h"

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
      auto dir = fs.mkdir(fs.root(), "d" + std::to_string(t), 0755, {});
      if (!dir) return (void)++failures;
      for (int i = 0; i < 150; ++i) {
        std::string name = "f" + std::to_string(i);
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

}  // namespace
}  // namespace lunfs

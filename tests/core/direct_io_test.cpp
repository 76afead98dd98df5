// The asynchronous data path (fs/core/direct_io.cpp): read_async/write_async give the same bytes
// and errors as read()/write() in every layout; a transfer in flight keeps truncate away
// until it completes; and on a LUN file with O_DIRECT, many transfers from several threads
// are in flight at once through Linux AIO and all land where they should.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "fs/device/buffer_pool.h"
#include "fs/device/fenced_device.h"
#include "fs/device/testing/fault_device.h"
#include "fs/device/write_log_device.h"
#include "fs_fixture.h"

namespace lunfs {
namespace {

using testing::FsFixture;
using testing::FsLayout;

constexpr uint32_t kBs = 4096;

std::vector<std::byte> pattern(size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 31 + seed * 7 + i / kBs) & 0xff);
  return v;
}

// read_async's answer, taken on whichever thread completes it.
Result<std::vector<std::byte>> read_async(FileSystem& fs, uint64_t ino, uint64_t off, size_t size) {
  std::promise<Result<std::vector<std::byte>>> p;
  fs.read_async(ino, off, size, [&p](Result<std::span<const std::byte>> data) {
    if (!data) return p.set_value(data.status());
    p.set_value(std::vector<std::byte>(data->begin(), data->end()));
  });
  return p.get_future().get();
}

Result<size_t> write_async(FileSystem& fs, uint64_t ino, uint64_t off, std::span<const std::byte> data) {
  std::promise<Result<size_t>> p;
  fs.write_async(ino, off, data, [&p](Result<size_t> n) { p.set_value(std::move(n)); });
  return p.get_future().get();
}

Result<std::vector<std::byte>> read_sync(FileSystem& fs, uint64_t ino, uint64_t off, size_t size) {
  std::vector<std::byte> buf(size);
  LUNFS_ASSIGN(size_t n, fs.read(ino, off, buf));
  buf.resize(n);
  return buf;
}

TEST(BufferPool, HandsOutAlignedBuffersAndReusesReturnedOnes) {
  BufferPool pool;
  std::byte* first = nullptr;
  {
    auto a = pool.get(3000);
    EXPECT_EQ(a.span().size(), 3000u);
    EXPECT_TRUE(is_aligned(a.span().data(), kDirectIoMemoryAlignment));
    first = a.span().data();
    auto b = pool.get(3000);
    EXPECT_NE(b.span().data(), first) << "a buffer on loan is not lent twice";
  }
  auto again = pool.get(4096);  // same size class (4 KiB); the last one returned comes first
  EXPECT_EQ(again.span().data(), first);
  auto big = pool.get(3 << 20);  // beyond the largest class: its own allocation
  EXPECT_EQ(big.span().size(), size_t{3} << 20);
  EXPECT_TRUE(is_aligned(big.span().data(), kDirectIoMemoryAlignment));
}

TEST(DirectIo, AsyncReadsGiveTheBytesOfSynchronousReadsInEveryLayout) {
  FsFixture f(FsLayout{});
  ASSERT_TRUE(f.ok());
  FileSystem& fs = f.fs();
  // tiny: inline data; image: written blocks, a hole, an unwritten (preallocated) range, a
  // partial tail block.
  uint64_t tiny = f.mkfile(f.root(), "tiny");
  ASSERT_TRUE(fs.write(tiny, 0, pattern(100, 1)));
  uint64_t image = f.mkfile(f.root(), "image");
  ASSERT_TRUE(fs.write(image, 0, pattern(8 * kBs, 2)));
  ASSERT_TRUE(fs.fallocate(image, 0, 16 * kBs, 8 * kBs));
  ASSERT_TRUE(fs.write(image, 24 * kBs, pattern(3 * kBs + 123, 3)));
  for (uint64_t ino : {tiny, image}) {
    for (uint64_t off : {uint64_t{0}, uint64_t{kBs}, uint64_t{6 * kBs}, uint64_t{15 * kBs}, uint64_t{20 * kBs},
                         uint64_t{26 * kBs}, uint64_t{27 * kBs}, uint64_t{50}, uint64_t{kBs + 7}, uint64_t{40 * kBs}}) {
      for (size_t size : {size_t{kBs}, size_t{3 * kBs}, size_t{100}, size_t{1 << 20}}) {
        auto want = read_sync(fs, ino, off, size);
        auto got = read_async(fs, ino, off, size);
        ASSERT_TRUE(want && got) << off << "+" << size;
        EXPECT_EQ(*got, *want) << "ino " << ino << " at " << off << "+" << size;
      }
    }
  }
  auto dir = read_async(fs, f.root(), 0, kBs);
  EXPECT_EQ(dir.err(), EISDIR);
  const int bad_inode_error = read_sync(fs, 999999, 0, kBs).err();  // not an inode block
  EXPECT_NE(bad_inode_error, 0);
  EXPECT_EQ(read_async(fs, 999999, 0, kBs).err(), bad_inode_error);
  f.expect_clean();
}

TEST(DirectIo, AsyncReadsUpdateAtimeByRelatime) {
  FsFixture f(FsLayout{});
  ASSERT_TRUE(f.ok());
  FileSystem& fs = f.fs();
  uint64_t ino = f.mkfile(f.root(), "image");
  ASSERT_TRUE(fs.write(ino, 0, pattern(4 * kBs, 4)));
  SetAttr old_atime;
  old_atime.atime = ondisk::Timespec{1000, 0};
  ASSERT_TRUE(fs.setattr(ino, old_atime));
  ASSERT_TRUE(read_async(fs, ino, 0, kBs));
  auto a = fs.getattr(ino);
  ASSERT_TRUE(a);
  EXPECT_GT(a->atime.sec, 1000) << "an atime older than mtime moves on a read (relatime)";
  f.expect_clean();
}

TEST(DirectIo, AsyncOverwritesAllocateNothingAndOtherWritesLandToo) {
  FsFixture f(FsLayout{});
  ASSERT_TRUE(f.ok());
  FileSystem& fs = f.fs();
  uint64_t ino = f.mkfile(f.root(), "image");
  ASSERT_TRUE(fs.write(ino, 0, pattern(8 * kBs, 5)));
  auto before = fs.extents(ino);
  ASSERT_TRUE(before);
  auto over = pattern(2 * kBs, 6);
  auto n = write_async(fs, ino, 2 * kBs, over);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, over.size());
  auto after = fs.extents(ino);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->size(), before->size()) << "an overwrite allocates nothing";
  // Writes that must allocate, extend or read-modify-write: a hole, past the end, unaligned.
  auto tail = pattern(kBs, 7), odd = pattern(333, 8);
  ASSERT_TRUE(write_async(fs, ino, 12 * kBs, tail));
  ASSERT_TRUE(write_async(fs, ino, kBs + 5, odd));
  std::vector<std::byte> want = pattern(8 * kBs, 5);
  std::memcpy(want.data() + 2 * kBs, over.data(), over.size());
  std::memcpy(want.data() + kBs + 5, odd.data(), odd.size());
  want.resize(13 * kBs, std::byte{0});
  std::memcpy(want.data() + 12 * kBs, tail.data(), tail.size());
  auto got = read_async(fs, ino, 0, want.size() + kBs);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, want);
  EXPECT_EQ(write_async(fs, f.root(), 0, tail).err(), EISDIR);
  f.expect_clean();
}

// Allocating whole-block writes (thin images, appends, holes between written blocks,
// preallocated ranges) through write_async end exactly as through write(): same bytes,
// sizes and block counts, and a clean fsck.
TEST(DirectIo, AsyncAllocatingWritesEndAsSynchronousWrites) {
  FsFixture f(FsLayout{});
  ASSERT_TRUE(f.ok());
  FileSystem& fs = f.fs();
  uint64_t by_async = f.mkfile(f.root(), "async"), by_sync = f.mkfile(f.root(), "sync");
  for (uint64_t ino : {by_async, by_sync}) {
    SetAttr thin;
    thin.size = 64 * kBs;  // a thin image: all holes
    ASSERT_TRUE(fs.setattr(ino, thin));
    ASSERT_TRUE(fs.fallocate(ino, 0, 40 * kBs, 4 * kBs));  // an unwritten range inside
  }
  struct Write {
    uint64_t block, blocks;
  };
  // Holes, a write across a hole and a written block, the unwritten range, past the end.
  const std::vector<Write> writes = {{10, 1}, {3, 2}, {11, 3}, {9, 4}, {40, 2}, {42, 4}, {70, 1}, {64, 3}};
  unsigned seed = 20;
  for (const Write& w : writes) {
    auto data = pattern(w.blocks * kBs, seed++);
    auto a = write_async(fs, by_async, w.block * kBs, data);
    auto b = fs.write(by_sync, w.block * kBs, data);
    ASSERT_TRUE(a && b) << "block " << w.block;
    EXPECT_EQ(*a, data.size());
  }
  auto attr_a = fs.getattr(by_async), attr_s = fs.getattr(by_sync);
  ASSERT_TRUE(attr_a && attr_s);
  EXPECT_EQ(attr_a->size, attr_s->size);
  EXPECT_EQ(attr_a->size, 71 * kBs) << "the size grew to the end of the furthest write";
  EXPECT_EQ(attr_a->blocks512, attr_s->blocks512);
  auto a = read_sync(fs, by_async, 0, 80 * kBs), b = read_sync(fs, by_sync, 0, 80 * kBs);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(*a, *b);
  ASSERT_TRUE(fs.unmount());
  f.mount();
  ASSERT_TRUE(f.ok());
  auto again = read_sync(f.fs(), by_async, 0, 80 * kBs);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *b) << "after a remount";
  f.expect_clean();
}

TEST(DirectIo, AsyncWritesOnAReadOnlyMountFailWithErofs) {
  FsFixture f(FsLayout{});
  ASSERT_TRUE(f.ok());
  uint64_t ino = f.mkfile(f.root(), "image");
  ASSERT_TRUE(f.fs().write(ino, 0, pattern(2 * kBs, 9)));
  ASSERT_TRUE(f.fs().unmount());
  MountOptions ro;
  ro.read_only = true;
  f.mount(ro);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(write_async(f.fs(), ino, 0, pattern(kBs, 10)).err(), EROFS);
  auto got = read_async(f.fs(), ino, 0, 2 * kBs);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, pattern(2 * kBs, 9));
}

// A device whose asynchronous transfers wait at a gate until the test opens it.
class GatedDevice final : public BlockDevice {
 public:
  explicit GatedDevice(std::unique_ptr<BlockDevice> inner) : inner_(std::move(inner)) {}
  uint64_t size_bytes() const override { return inner_->size_bytes(); }
  uint32_t io_alignment() const override { return inner_->io_alignment(); }
  Status read(uint64_t o, std::span<std::byte> b) override { return inner_->read(o, b); }
  Status write(uint64_t o, std::span<const std::byte> b) override { return inner_->write(o, b); }
  Status flush() override { return inner_->flush(); }
  std::string describe() const override { return "gated " + inner_->describe(); }
  std::unique_ptr<IoQueue> make_io_queue() override {
    auto q = std::make_unique<Queue>(*this);
    queue_ = q.get();
    return q;
  }

  size_t waiting() {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  // Asynchronous writes fail with EIO from now on (the blocking path still works).
  void fail_async_writes() { fail_writes_ = true; }
  // Runs every held batch as one reap (as the AIO queue's completion thread does), then
  // lets later ones through at once.
  void open() {
    std::vector<Held> batches;
    {
      std::lock_guard lock(mu_);
      open_ = true;
      batches.swap(held_);
    }
    for (auto& h : batches) run(h);
    if (!batches.empty()) queue_->end_of_reap();
  }

 private:
  struct Held {
    std::vector<IoTransfer> transfers;
    IoCompletion* done;
  };
  struct Queue final : IoQueue {
    explicit Queue(GatedDevice& d) : dev(d) {}
    void submit(std::span<const IoTransfer> t, IoCompletion& done) override {
      Held h{{t.begin(), t.end()}, &done};
      {
        std::lock_guard lock(dev.mu_);
        if (!dev.open_) return dev.held_.push_back(std::move(h));
      }
      dev.run(h);
      reaped();
    }
    void drain() override {}
    void end_of_reap() { reaped(); }
    GatedDevice& dev;
  };
  void run(Held& h) {
    Status st;
    for (auto& t : h.transfers) {
      Status s = t.kind == IoTransfer::Kind::kRead ? inner_->read(t.offset, t.buf)
                 : fail_writes_                        ? error(EIO, "injected write error")
                                                       : inner_->write(t.offset, t.buf);
      if (!s && st) st = s;
    }
    h.done->io_done(st);
  }

  std::unique_ptr<BlockDevice> inner_;
  Queue* queue_ = nullptr;
  std::atomic<bool> fail_writes_{false};
  std::mutex mu_;
  bool open_ = false;
  std::vector<Held> held_;
};

TEST(DirectIo, TruncateWaitsForTheTransfersInFlightOnItsFile) {
  GatedDevice* gate = nullptr;
  FsLayout layout;
  layout.make_device = [&gate] {
    auto d = std::make_unique<GatedDevice>(make_memory_device(uint64_t{512} << 20));
    gate = d.get();
    return d;
  };
  FsFixture f(layout);
  ASSERT_TRUE(f.ok());
  FileSystem& fs = f.fs();
  uint64_t ino = f.mkfile(f.root(), "image");
  ASSERT_TRUE(fs.write(ino, 0, pattern(8 * kBs, 11)));
  // A read and an overwrite in flight, held at the gate.
  std::atomic<int> completed{0};
  std::vector<std::byte> read_back;
  fs.read_async(ino, 0, 4 * kBs, [&](Result<std::span<const std::byte>> d) {
    if (d) read_back.assign(d->begin(), d->end());
    completed++;
  });
  auto over = pattern(4 * kBs, 12);
  fs.write_async(ino, 4 * kBs, over, [&](Result<size_t> n) {
    EXPECT_TRUE(n);
    completed++;
  });
  ASSERT_EQ(gate->waiting(), 2u);
  EXPECT_EQ(completed, 0);
  // Truncate must not free the blocks under them: it waits for the gate.
  std::atomic<bool> truncated{false};
  std::thread truncater([&] {
    SetAttr c;
    c.size = 0;
    EXPECT_TRUE(fs.setattr(ino, c));
    truncated = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(truncated) << "truncate went on while transfers to its blocks were in flight";
  // Other files are not held up.
  uint64_t other = f.mkfile(f.root(), "other");
  EXPECT_TRUE(fs.write(other, 0, pattern(kBs, 13)));
  gate->open();
  truncater.join();
  EXPECT_TRUE(truncated);
  EXPECT_EQ(completed, 2);
  EXPECT_EQ(read_back, pattern(4 * kBs, 11));
  auto a = fs.getattr(ino);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size, 0u);
  f.expect_clean();
}

FsLayout gated_layout(GatedDevice*& gate) {
  FsLayout layout;
  layout.make_device = [&gate] {
    auto d = std::make_unique<GatedDevice>(make_memory_device(uint64_t{512} << 20));
    gate = d.get();
    return d;
  };
  return layout;
}

// While an allocating write's data is in flight, its range reads as zeros (never what the
// new blocks held before), the size has not grown, and truncate waits; when the data is on
// the device, the second transaction makes it visible.
TEST(DirectIo, AnAllocatingWriteInFlightShowsZerosAndHoldsTruncate) {
  GatedDevice* gate = nullptr;
  FsFixture f(gated_layout(gate));
  ASSERT_TRUE(f.ok());
  FileSystem& fs = f.fs();
  uint64_t ino = f.mkfile(f.root(), "image");
  ASSERT_TRUE(fs.write(ino, 0, pattern(4 * kBs, 30)));
  // Free space that held other bytes: the new blocks may come from there.
  uint64_t old_file = f.mkfile(f.root(), "old");
  ASSERT_TRUE(fs.write(old_file, 0, pattern(16 * kBs, 31)));
  ASSERT_TRUE(fs.unlink(f.root(), "old"));
  SetAttr thin;
  thin.size = 8 * kBs;  // blocks 4..7: a hole inside the file
  ASSERT_TRUE(fs.setattr(ino, thin));
  std::atomic<int> answered{0};
  auto inside = pattern(2 * kBs, 32), past_end = pattern(2 * kBs, 34);
  for (auto [block, data] : {std::pair{4, &inside}, std::pair{8, &past_end}}) {
    fs.write_async(ino, block * kBs, *data, [&](Result<size_t> n) {
      EXPECT_TRUE(n);
      answered++;
    });
  }
  ASSERT_EQ(gate->waiting(), 2u);
  auto during = read_sync(fs, ino, 0, 16 * kBs);
  ASSERT_TRUE(during);
  ASSERT_EQ(during->size(), 8 * kBs) << "the size grew before the data was on the device";
  EXPECT_EQ(std::vector<std::byte>(during->begin() + 4 * kBs, during->end()), std::vector<std::byte>(4 * kBs))
      << "the range in flight showed something other than zeros";
  std::atomic<bool> truncated{false};
  std::thread truncater([&] {
    SetAttr c;
    c.size = kBs;
    EXPECT_TRUE(fs.setattr(ino, c));
    truncated = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(truncated) << "truncate went on while an allocating write to the file was in flight";
  EXPECT_EQ(answered, 0);
  gate->open();
  truncater.join();
  EXPECT_EQ(answered, 2);
  auto a = fs.getattr(ino);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->size, kBs) << "truncate ran after the write, not before";
  f.expect_clean();
}

// The second transactions of the allocating writes one reap completes are one transaction
// (FileSystem::finish_reaped_writes): writes to several files, into holes, past the end and
// into the same extent leaf, all completed at once, end as if written one by one, also
// after a remount.
TEST(DirectIo, AllocatingWritesCompletedInOneReapEndAsIfWrittenOneByOne) {
  GatedDevice* gate = nullptr;
  FsFixture f(gated_layout(gate));
  ASSERT_TRUE(f.ok());
  FileSystem& fs = f.fs();
  constexpr int kFiles = 3, kWritesPerFile = 24;
  std::vector<uint64_t> inos;
  std::vector<std::vector<std::byte>> expected(kFiles);
  for (int i = 0; i < kFiles; ++i) {
    inos.push_back(f.mkfile(f.root(), "image" + std::to_string(i)));
    SetAttr thin;
    thin.size = 16 * kBs;  // the later writes land past the end
    ASSERT_TRUE(fs.setattr(inos.back(), thin));
    expected[i].assign(16 * kBs, std::byte{0});
  }
  std::vector<std::vector<std::byte>> data;
  std::vector<std::pair<int, uint64_t>> where;
  for (int w = 0; w < kWritesPerFile; ++w) {
    for (int i = 0; i < kFiles; ++i) {
      const uint64_t block = (w * 7 + i * 3) % 40;  // scattered, some past the end
      if (std::find(where.begin(), where.end(), std::pair{i, block}) != where.end()) continue;
      where.emplace_back(i, block);
      data.push_back(pattern(kBs, static_cast<unsigned>(100 + data.size())));
    }
  }
  std::atomic<int> answered{0}, failed{0};
  for (size_t k = 0; k < where.size(); ++k) {
    auto [i, block] = where[k];
    fs.write_async(inos[i], block * kBs, data[k], [&](Result<size_t> n) {
      if (!n || *n != kBs) failed++;
      answered++;
    });
    auto& e = expected[i];
    if (e.size() < (block + 1) * kBs) e.resize((block + 1) * kBs, std::byte{0});
    std::copy(data[k].begin(), data[k].end(), e.begin() + static_cast<ptrdiff_t>(block * kBs));
  }
  ASSERT_EQ(gate->waiting(), where.size());
  gate->open();  // every transfer completes in one reap
  EXPECT_EQ(answered, static_cast<int>(where.size()));
  EXPECT_EQ(failed, 0);
  auto check = [&](const char* when) {
    for (int i = 0; i < kFiles; ++i) {
      auto got = read_sync(f.fs(), inos[i], 0, 64 * kBs);
      ASSERT_TRUE(got);
      EXPECT_EQ(got->size(), expected[i].size()) << "size of file " << i << " " << when;
      EXPECT_TRUE(*got == expected[i]) << "content of file " << i << " " << when;
    }
  };
  check("after the reap");
  f.expect_clean();  // unmounts
  f.mount();
  ASSERT_TRUE(f.ok());
  check("after a remount");
  f.expect_clean();
}

// A reap whose joint second transaction the journal refuses (too large: 64 inodes where
// the journal takes at most 32 blocks a transaction) still ends every write: each then
// gets a transaction of its own.
TEST(DirectIo, AReapTooLargeForOneJournalTransactionFinishesEachWriteAlone) {
  GatedDevice* gate = nullptr;
  FsLayout layout = gated_layout(gate);
  layout.journal = true;
  layout.journal_max_transaction_blocks = 32;
  FsFixture f(layout);
  ASSERT_TRUE(f.ok());
  FileSystem& fs = f.fs();
  constexpr int kFiles = 64;
  std::vector<uint64_t> inos;
  for (int i = 0; i < kFiles; ++i) {
    inos.push_back(f.mkfile(f.root(), "image" + std::to_string(i)));
    SetAttr thin;
    thin.size = 16 * kBs;
    ASSERT_TRUE(fs.setattr(inos.back(), thin));
  }
  std::vector<std::vector<std::byte>> data;
  for (int i = 0; i < kFiles; ++i) data.push_back(pattern(kBs, 200 + i));
  std::atomic<int> answered{0};
  std::mutex errors_mu;
  std::vector<std::string> errors;
  for (int i = 0; i < kFiles; ++i) {
    fs.write_async(inos[i], 3 * kBs, data[i], [&](Result<size_t> n) {
      if (!n) {
        std::lock_guard lock(errors_mu);
        errors.push_back(n.status().to_string());
      }
      answered++;
    });
  }
  ASSERT_EQ(gate->waiting(), static_cast<size_t>(kFiles));
  gate->open();
  EXPECT_EQ(answered, kFiles);
  EXPECT_TRUE(errors.empty()) << errors.size() << " writes failed, the first: " << errors.front();
  for (int i = 0; i < kFiles; ++i) {
    auto got = read_sync(fs, inos[i], 3 * kBs, kBs);
    ASSERT_TRUE(got);
    EXPECT_TRUE(*got == data[i]) << "file " << i;
  }
  f.expect_clean();
}

// Power fails at the `nth` write or flush from cut_at() on: that one and every later write
// and flush never reach the device below (a FaultInjectingDevice, whose crash() then decides
// which of the unflushed writes before survived).
class PowerCut final : public ForwardingDevice {
 public:
  using ForwardingDevice::ForwardingDevice;
  void cut_at(uint64_t nth) {
    std::lock_guard lock(mu_);
    countdown_ = nth;
    writes_ = 0;
  }
  void restore() {
    std::lock_guard lock(mu_);
    countdown_ = 0;
    cut_ = false;
  }
  // Writes and flushes.
  uint64_t writes_since_cut_at() {
    std::lock_guard lock(mu_);
    return writes_;
  }
  Status write(uint64_t o, std::span<const std::byte> b) override {
    {
      std::lock_guard lock(mu_);
      if (cut_ || (countdown_ != 0 && --countdown_ == 0)) {
        cut_ = true;
        return error(EIO, "power cut");
      }
      ++writes_;
    }
    return inner_.write(o, b);
  }
  Status flush() override {
    {
      std::lock_guard lock(mu_);
      if (cut_ || (countdown_ != 0 && --countdown_ == 0)) {
        cut_ = true;
        return error(EIO, "power cut");
      }
      ++writes_;
    }
    return inner_.flush();
  }

 private:
  std::mutex mu_;
  uint64_t countdown_ = 0, writes_ = 0;
  bool cut_ = false;
};

// A crash at every device write and flush from the reap that completes several allocating
// writes (one joint second transaction, FileSystem::finish_reaped_writes) to the fsyncs
// that commit it, keeping none, half (the next one torn), all or every other one of the
// unflushed writes. After recovery every write is whole or absent: its block reads as its
// data or as zeros, never as what free space held before (a written extent over data that
// never arrived); a size grown past the old end covers data; fsck is clean.
TEST(DirectIo, ACrashAtEveryWriteOfAReapsJointTransactionLeavesEachWriteWholeOrAbsent) {
  const std::string marker = "STALE-DISK-DATA!";
  constexpr uint64_t kOldBlocks = 8;
  struct Write {
    int file;
    uint64_t block;
  };
  // Two files, into holes, into the same leaf, and past the end.
  const std::vector<Write> writes = {{0, 1}, {0, 2}, {0, 5}, {1, 0}, {1, 3}, {1, 9}, {0, 11}};
  struct Outcome {
    uint64_t device_writes = 0;
    size_t whole = 0;
  };
  // One run; `cut` 0: no crash. `keep`: of the unflushed writes, 0 none, 1 half (+ a torn
  // one), 2 all, 3 every other one (a cache that reorders: only flushes order writes).
  auto run = [&](uint64_t cut, int keep, Outcome& out) {
    auto mem = make_memory_device(uint64_t{128} << 20);
    {
      std::vector<std::byte> fill(1 << 20);
      for (size_t i = 0; i < fill.size(); ++i) fill[i] = static_cast<std::byte>(marker[i % marker.size()]);
      for (uint64_t o = 0; o < mem->size_bytes(); o += fill.size()) ASSERT_TRUE(mem->write(o, fill));
    }
    FaultInjectingDevice cache(*mem);
    PowerCut power(cache);
    GatedDevice* gate = nullptr;
    FsLayout layout;
    layout.journal = true;
    layout.make_device = [&] {
      auto d = std::make_unique<GatedDevice>(std::make_unique<ForwardingDevice>(static_cast<BlockDevice&>(power)));
      gate = d.get();
      return d;
    };
    FsFixture f(layout);
    ASSERT_TRUE(f.ok());
    FileSystem& fs = f.fs();
    const uint64_t inos[2] = {f.mkfile(f.root(), "a.img"), f.mkfile(f.root(), "b.img")};
    for (uint64_t ino : inos) {
      SetAttr thin;
      thin.size = kOldBlocks * kBs;
      ASSERT_TRUE(fs.setattr(ino, thin));
      ASSERT_TRUE(fs.fsync(ino, false));
    }
    std::vector<std::vector<std::byte>> data;
    std::atomic<int> answered{0};
    for (size_t k = 0; k < writes.size(); ++k) {
      data.push_back(pattern(kBs, static_cast<unsigned>(40 + k)));
      fs.write_async(inos[writes[k].file], writes[k].block * kBs, data[k], [&, cut](Result<size_t> n) {
        if (cut == 0) {
          EXPECT_TRUE(n) << n.status().to_string();
        }
        answered++;
      });
    }
    ASSERT_EQ(gate->waiting(), writes.size());
    // The first transactions (unwritten extents) durable before the data moves, as a timer
    // commit may make them: a crash among the data writes then finds the ranges mapped.
    ASSERT_TRUE(f.journal()->commit());
    power.cut_at(cut);
    gate->open();  // the data writes, then one reap: the joint second transaction
    EXPECT_EQ(answered, static_cast<int>(writes.size()));
    const bool synced = fs.fsync(inos[0], false) && fs.fsync(inos[1], false);
    out.device_writes = power.writes_since_cut_at();
    if (cut == 0) {
      ASSERT_TRUE(synced);
    } else {
      f.drop();
      const size_t pending = cache.pending_writes();
      std::vector<bool> every_other(pending);
      for (size_t i = 0; i < pending; ++i) every_other[i] = i % 2 == 1;
      ASSERT_TRUE(keep == 0   ? cache.crash(0)
                  : keep == 1 ? cache.crash(pending / 2, 3)
                  : keep == 2 ? cache.crash(pending)
                              : cache.crash_with_subset(every_other));
      power.restore();
      f.mount();
      ASSERT_TRUE(f.ok());
    }
    for (size_t k = 0; k < writes.size(); ++k) {
      const uint64_t ino = inos[writes[k].file];
      auto got = read_sync(f.fs(), ino, writes[k].block * kBs, kBs);
      ASSERT_TRUE(got) << got.status().to_string();
      auto a = f.fs().getattr(ino);
      ASSERT_TRUE(a);
      const bool covered = a->size > writes[k].block * kBs;
      const bool whole = covered && *got == data[k];
      const bool absent = !covered || std::all_of(got->begin(), got->end(), [](std::byte b) { return b == std::byte{0}; });
      EXPECT_TRUE(whole || absent) << "write " << k << " after a cut at write " << cut << " keeping " << keep
                                   << ": its block reads neither as its data nor as zeros";
      if (writes[k].block >= kOldBlocks && covered) {
        EXPECT_TRUE(whole) << "write " << k << " past the old end: the size covers it, its data is missing";
      }
      out.whole += whole;
    }
    if (cut == 0) {
      EXPECT_EQ(out.whole, writes.size());
    }
    f.expect_clean();
  };
  Outcome clean;
  run(0, 0, clean);
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_GT(clean.device_writes, writes.size() + 1) << "the data writes and the journal commit";
  size_t points = 0, all_whole = 0, none_whole = 0;
  for (uint64_t cut = 1; cut <= clean.device_writes; ++cut) {
    for (int keep = 0; keep < 4; ++keep) {
      Outcome o;
      run(cut, keep, o);
      ASSERT_FALSE(HasFatalFailure()) << "cut at write " << cut << ", keep " << keep;
      ++points;
      all_whole += o.whole == writes.size();
      none_whole += o.whole == 0;
    }
  }
  std::printf("%zu crash points over %llu device writes and flushes: %zu with every write whole, %zu with none\n", points,
              static_cast<unsigned long long>(clean.device_writes), all_whole, none_whole);
  EXPECT_GT(all_whole, 0u);
  EXPECT_GT(none_whole, 0u);
}

TEST(DirectIo, AnAllocatingWriteWhoseDataFailsReportsItAndLeavesZeros) {
  GatedDevice* gate = nullptr;
  FsFixture f(gated_layout(gate));
  ASSERT_TRUE(f.ok());
  FileSystem& fs = f.fs();
  gate->open();
  uint64_t ino = f.mkfile(f.root(), "image");
  SetAttr thin;
  thin.size = 8 * kBs;
  ASSERT_TRUE(fs.setattr(ino, thin));
  gate->fail_async_writes();
  EXPECT_EQ(write_async(fs, ino, 2 * kBs, pattern(2 * kBs, 33)).err(), EIO);
  auto got = read_sync(fs, ino, 0, 8 * kBs);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, std::vector<std::byte>(8 * kBs)) << "a failed write left something readable";
  f.expect_clean();
}

// A LUN file on a disk file system (O_DIRECT: Linux AIO); /tmp may be tmpfs.
std::string lun_path() {
  char templ[] = "/var/tmp/lunfs-direct-io-XXXXXX";
  int fd = mkstemp(templ);
  if (fd < 0) return {};
  bool sized = ftruncate(fd, off_t{256} << 20) == 0;
  close(fd);
  return sized ? templ : "";
}

// The devices mount.lunfs stacks on the LUN (fuse/main.cpp): the write log under the
// fence. Their queues wrap the LUN's AIO queue.
class MountStack final : public ForwardingDevice {
 public:
  static std::unique_ptr<BlockDevice> over(std::unique_ptr<BlockDevice> lun, const std::string& log_path) {
    auto log = WriteLogDevice::open(*lun, log_path);
    if (!log) return nullptr;
    auto fence = std::make_unique<FencedDevice>(**log);
    return std::unique_ptr<BlockDevice>(new MountStack(std::move(lun), std::move(*log), std::move(fence)));
  }

 private:
  MountStack(std::unique_ptr<BlockDevice> lun, std::unique_ptr<WriteLogDevice> log, std::unique_ptr<FencedDevice> fence)
      : ForwardingDevice(*fence), lun_(std::move(lun)), log_(std::move(log)), fence_(std::move(fence)) {}
  std::unique_ptr<BlockDevice> lun_;
  std::unique_ptr<WriteLogDevice> log_;
  std::unique_ptr<FencedDevice> fence_;
};

struct Unlink {
  std::string p;
  ~Unlink() {
    if (!p.empty()) unlink(p.c_str());
  }
};

// Every thread submits all of its writes before waiting for any: hundreds in flight. To a
// thin file, each write allocates: first transactions on the submitting threads, second
// ones on the completion thread, all at once. `as_mounted`: through the devices
// mount.lunfs puts over the LUN.
void many_transfers_on_a_lun_file(bool thin, bool as_mounted = false) {
  const std::string path = lun_path();
  ASSERT_FALSE(path.empty()) << "cannot create a LUN file in /var/tmp";
  Unlink cleanup{path};
  Unlink log_cleanup{as_mounted ? path + ".writes" : ""};
  bool direct = false;
  FsLayout layout;
  layout.make_device = [&]() -> std::unique_ptr<BlockDevice> {
    auto d = FileBlockDevice::open(path);
    if (!d) return nullptr;
    direct = (*d)->direct_io();
    if (as_mounted) return MountStack::over(std::move(*d), log_cleanup.p);
    return std::move(*d);
  };
  FsFixture f(layout);
  ASSERT_TRUE(f.ok());
  if (!direct) GTEST_SKIP() << "/var/tmp refuses O_DIRECT: no asynchronous path to test";
  FileSystem& fs = f.fs();
  constexpr int kThreads = 4, kBlocksPerThread = 256;
  uint64_t ino = f.mkfile(f.root(), "image");
  const size_t image_bytes = size_t{kThreads} * kBlocksPerThread * kBs;
  if (thin) {
    SetAttr c;
    c.size = image_bytes;
    ASSERT_TRUE(fs.setattr(ino, c));
  } else {
    ASSERT_TRUE(fs.write(ino, 0, std::vector<std::byte>(image_bytes)));
  }

  std::atomic<int> done{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kBlocksPerThread; ++i) {
        const uint64_t block = uint64_t(i) * kThreads + t;  // interleaved across threads
        fs.write_async(ino, block * kBs, pattern(kBs, unsigned(block)), [&](Result<size_t> n) {
          if (!n || *n != kBs) failed++;
          done++;
        });
      }
    });
  }
  for (auto& th : threads) th.join();
  fs.drain_io();
  EXPECT_EQ(done, kThreads * kBlocksPerThread);
  EXPECT_EQ(failed, 0);

  // Reads in flight together too; each lands in its own buffer.
  std::mutex mu;
  std::vector<std::vector<std::byte>> got(kThreads * kBlocksPerThread);
  for (uint64_t block = 0; block < got.size(); ++block) {
    fs.read_async(ino, block * kBs, kBs, [&, block](Result<std::span<const std::byte>> d) {
      std::lock_guard lock(mu);
      if (d) got[block].assign(d->begin(), d->end());
    });
  }
  fs.drain_io();
  for (uint64_t block = 0; block < got.size(); ++block) {
    ASSERT_EQ(got[block], pattern(kBs, unsigned(block))) << "block " << block;
  }
  // And the synchronous path sees the same file, after a remount.
  ASSERT_TRUE(fs.unmount());
  f.mount();
  ASSERT_TRUE(f.ok());
  auto all = read_sync(f.fs(), ino, 5 * kBs, kBs);
  ASSERT_TRUE(all);
  EXPECT_EQ(*all, pattern(kBs, 5));
  auto extents = f.fs().extents(ino);
  ASSERT_TRUE(extents);
  uint64_t mapped = 0;
  for (const auto& e : *extents) {
    mapped += e.length;
    EXPECT_EQ(e.flags & ondisk::kExtentUnwritten, 0u) << "logical block " << e.logical << " left unwritten";
  }
  EXPECT_EQ(mapped * kBs, image_bytes) << "every block mapped once";
  f.expect_clean();
}

TEST(DirectIo, ManyTransfersFromManyThreadsInFlightOnALunFile) { many_transfers_on_a_lun_file(false); }

TEST(DirectIo, ManyAllocatingWritesFromManyThreadsInFlightOnALunFile) { many_transfers_on_a_lun_file(true); }

// mount.lunfs's fence and write log wrap the LUN's queue: the second transactions the AIO
// completions leave for the reap hook still run (they once waited forever: the hook was
// set on the outer queue, which never ran it).
TEST(DirectIo, ManyAllocatingWritesInFlightThroughTheFenceAndTheWriteLog) {
  many_transfers_on_a_lun_file(true, /*as_mounted=*/true);
}

// The same with the synchronous queue under the fence (a memory device): each batch
// completes inside submit(), so the write has its answer when write_async returns.
TEST(DirectIo, AnAllocatingWriteThroughTheFenceOverASynchronousQueueIsAnswered) {
  FsLayout layout;
  layout.make_device = [] {
    struct Fenced final : ForwardingDevice {
      explicit Fenced(std::unique_ptr<BlockDevice> d, std::unique_ptr<FencedDevice> f)
          : ForwardingDevice(*f), mem(std::move(d)), fence(std::move(f)) {}
      std::unique_ptr<BlockDevice> mem;
      std::unique_ptr<FencedDevice> fence;
    };
    auto mem = make_memory_device(uint64_t{512} << 20);
    auto fence = std::make_unique<FencedDevice>(*mem);
    return std::unique_ptr<BlockDevice>(new Fenced(std::move(mem), std::move(fence)));
  };
  FsFixture f(layout);
  ASSERT_TRUE(f.ok());
  const uint64_t ino = f.mkfile(f.root(), "image");
  SetAttr thin;
  thin.size = 64 * kBs;
  ASSERT_TRUE(f.fs().setattr(ino, thin));
  const auto data = pattern(kBs, 7);
  bool answered = false;
  Status result;
  f.fs().write_async(ino, 5 * kBs, data, [&](Result<size_t> n) {
    answered = true;
    result = n.status();
  });
  ASSERT_TRUE(answered) << "the allocating write was never answered";
  EXPECT_TRUE(result) << result.to_string();
  auto got = read_sync(f.fs(), ino, 5 * kBs, kBs);
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, data);
  f.expect_clean();
}

}  // namespace
}  // namespace lunfs

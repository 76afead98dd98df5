// Journal benchmarks on a LUN file with O_DIRECT (not a test; docs/journal.md has figures):
//  1. commit latency of a one-block transaction vs the raw LUN's 4 KiB O_DIRECT pwrite +
//     fdatasync, measured in the same run (ratio);
//  2. transactions/s with group commit, one thread vs N threads each submitting and
//     committing one-block transactions;
//  3. replay time of a full 128 MiB journal.
// Usage: journal_bench [--path FILE] [--iterations N] [--threads N] [--seconds S]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "fs/device/aligned_buffer.h"
#include "journal/journal.h"
#include "journal/log_writer.h"
#include "journal/replay.h"
#include "mkfs/formatter.h"

namespace lunfs {
namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string path = "/var/tmp/lunfs-journal-bench.img";
  int iterations = 500;
  int threads = 8;
  double seconds = 3;
};

double us_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

struct Latency {
  double median = 0, p99 = 0;
  static Latency of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v[std::min(v.size() - 1, v.size() * 99 / 100)]};
  }
};

void die(const std::string& what, const Status& st) {
  std::fprintf(stderr, "journal_bench: %s: %s\n", what.c_str(), st.to_string().c_str());
  std::exit(1);
}

std::shared_ptr<AlignedBuffer> image(const ondisk::Superblock& sb, uint64_t block, uint64_t seq) {
  auto b = std::make_shared<AlignedBuffer>(sb.geometry.block_size);
  std::memset(b->data(), static_cast<int>(seq), b->size());
  ondisk::seal_block(b->span(), ondisk::BlockType::kInode, block, seq, sb.csum_seed);
  return b;
}

std::unique_ptr<journal::Journal> open_journal(BlockDevice& dev, const ondisk::Superblock& sb,
                                               uint32_t max_txn_blocks = 0) {
  journal::JournalOptions o;
  o.commit_interval = std::chrono::milliseconds(0);
  o.max_transaction_blocks = max_txn_blocks;
  auto j = journal::Journal::open(dev, sb, 0, o);
  if (!j) die("open journal", j.status());
  return std::move(j.value());
}

int run(const Args& a) {
  // A 1 GiB sparse LUN file: one 128 MiB journal, the rest data.
  {
    int fd = ::open(a.path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ::ftruncate(fd, 1ll << 30) != 0) {
      std::perror(a.path.c_str());
      return 1;
    }
    ::close(fd);
  }
  auto opened = FileBlockDevice::open(a.path);
  if (!opened) die("open " + a.path, opened.status());
  FileBlockDevice& dev = **opened;
  MkfsOptions mo;
  mo.cluster_name = "bench";
  mo.fs_name = "bench";
  mo.journals = 1;
  mo.journal_mib = 128;
  auto sb = plan_filesystem(dev, mo);
  if (!sb) die("mkfs", sb.status());
  if (auto st = write_filesystem(dev, *sb); !st) die("mkfs", st);
  const uint32_t bs = sb->geometry.block_size;
  const uint64_t data0 = sb->geometry.rgrp(0).first_data + 1024;
  // Write every block the benchmark touches once, so that the LUN file behaves like a LUN:
  // writes into holes of a sparse file make each fdatasync commit the host file system's
  // own journal, which would be measured instead of ours.
  {
    AlignedBuffer zeros(4u << 20);
    auto fill = [&](uint64_t first, uint64_t count) {
      for (uint64_t b = first; b < first + count; b += zeros.size() / bs) {
        const uint64_t n = std::min<uint64_t>(zeros.size() / bs, first + count - b);
        if (auto st = dev.write(b * bs, zeros.span().first(n * bs)); !st) die("preallocate", st);
      }
    };
    fill(sb->geometry.journal(0), sb->geometry.journal_blocks);
    fill(data0, 8192 + 33000);
    if (auto st = dev.flush(); !st) die("preallocate", st);
  }
  std::printf("device: %s%s\n", dev.describe().c_str(),
              dev.fallback_note().empty() ? "" : (" (" + dev.fallback_note() + ")").c_str());

  // 1. Raw baseline vs journal commit latency, interleaved in rounds so drift hits both.
  std::vector<double> raw, commit;
  {
    auto j = open_journal(dev, *sb);
    AlignedBuffer buf(bs);
    std::memset(buf.data(), 0xAB, bs);
    for (int i = 0; i < a.iterations; ++i) {
      auto t0 = Clock::now();
      if (::pwrite(dev.fd(), buf.data(), bs, static_cast<off_t>((data0 + 4096 + i % 64) * bs)) != bs ||
          ::fdatasync(dev.fd()) != 0) {
        std::perror("raw pwrite+fdatasync");
        return 1;
      }
      raw.push_back(us_since(t0));
      TransactionRecord txn;
      txn.blocks.push_back({data0 + i % 64, image(*sb, data0 + i % 64, i + 1)});
      t0 = Clock::now();
      if (auto s = j->submit(std::move(txn)); !s) die("submit", s.status());
      if (auto st = j->commit(); !st) die("commit", st);
      commit.push_back(us_since(t0));
    }
    if (auto st = j->checkpoint(); !st) die("checkpoint", st);
  }
  Latency lr = Latency::of(raw), lc = Latency::of(commit);
  std::printf("raw 4 KiB O_DIRECT pwrite+fdatasync: median %.0f us, p99 %.0f us (%d runs)\n", lr.median, lr.p99, a.iterations);
  std::printf("journal commit, 1-block transaction: median %.0f us, p99 %.0f us\n", lc.median, lc.p99);
  std::printf("commit / raw ratio (median): %.2f\n", lc.median / lr.median);

  // 2. Group commit: transactions/s with 1 thread and with N threads.
  auto throughput = [&](int threads) {
    auto j = open_journal(dev, *sb);
    std::atomic<uint64_t> done{0};
    std::atomic<bool> stop{false};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t) {
      ts.emplace_back([&, t] {
        for (uint64_t i = 1; !stop.load(std::memory_order_relaxed); ++i) {
          TransactionRecord txn;
          const uint64_t b = data0 + 128 + t;
          txn.blocks.push_back({b, image(*sb, b, i)});
          if (auto s = j->submit(std::move(txn)); !s) die("submit", s.status());
          if (auto st = j->commit(); !st) die("commit", st);
          done.fetch_add(1, std::memory_order_relaxed);
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(a.seconds));
    stop = true;
    for (auto& t : ts) t.join();
    const uint64_t commits = j->stats().commits;
    if (auto st = j->checkpoint(); !st) die("checkpoint", st);
    std::printf("%d thread(s): %.0f transactions/s, %.1f transactions per commit\n", threads,
                done.load() / a.seconds, commits ? double(done.load()) / commits : 0.0);
    return done.load() / a.seconds;
  };
  const double one = throughput(1);
  const double many = throughput(a.threads);
  std::printf("group commit speed-up with %d threads: %.1fx\n", a.threads, many / one);

  // 3. Replay of a full journal: commit transactions of 256 distinct blocks without ever
  //    checkpointing, until the next one would not fit, then replay.
  {
    const uint32_t jb = sb->geometry.journal_blocks;
    auto j = open_journal(dev, *sb, jb);
    uint64_t used = 0;
    const uint64_t per_txn = journal::transaction_blocks(256, 0, bs);
    for (uint64_t t = 0; used + per_txn <= jb - 1; ++t) {
      TransactionRecord txn;
      for (uint64_t k = 0; k < 256; ++k) {
        const uint64_t b = data0 + 8192 + (t * 256 + k);
        txn.blocks.push_back({b, image(*sb, b, t + 1)});
      }
      if (auto s = j->submit(std::move(txn)); !s) die("submit", s.status());
      if (auto st = j->commit(); !st) die("commit", st);
      used += per_txn;
    }
    if (j->stats().checkpoints != 0) die("fill", error(EIO, "the fill checkpointed"));
    j.reset();
    auto t0 = Clock::now();
    auto report = journal::replay(dev, *sb, 0);
    const double ms = us_since(t0) / 1000;
    if (!report) die("replay", report.status());
    std::printf("replay of a full %u MiB journal (%llu log blocks, %zu transactions, %zu blocks home): %.0f ms\n",
                static_cast<unsigned>((uint64_t{jb} * bs) >> 20), static_cast<unsigned long long>(used),
                report->transactions, report->blocks_written, ms);
  }
  ::unlink(a.path.c_str());
  return 0;
}

}  // namespace
}  // namespace lunfs

int main(int argc, char** argv) {
  lunfs::Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--path") a.path = argv[i + 1];
    else if (k == "--iterations") a.iterations = std::atoi(argv[i + 1]);
    else if (k == "--threads") a.threads = std::atoi(argv[i + 1]);
    else if (k == "--seconds") a.seconds = std::atof(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--path FILE] [--iterations N] [--threads N] [--seconds S]\n", argv[0]);
      return 2;
    }
  }
  return lunfs::run(a);
}

// Allocating writes at the core (no FUSE): N threads fill a thin image with writes of one
// size at random block-aligned offsets (each offset once: every write allocates), against
// raw O_DIRECT pwrites of the same count, size and thread count to the same LUN file.
// The LUN is a file (FileBlockDevice, O_DIRECT), written in full once so that neither side
// pays for the host file system's own allocation; every lunfs round formats it afresh and
// mounts it over slot 0's journal (5 s commit timer, as mounted). Rounds interleave
// raw and lunfs at every thread count, because the disk's speed drifts within minutes: only
// ratios of one round mean anything. What to read: lunfs/raw per thread count, and how
// lunfs scales from the first thread count to the others next to how raw scales.
// usage: thin_write_bench LUN_FILE [WRITES] [WRITE_KIB] [ROUNDS] [THREADS...]
//        (defaults: 20000 writes of 4 KiB, 3 rounds, threads 1 8; the LUN file is 2 GiB)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/support/bench_lun.h"
#include "fs/device/aligned_buffer.h"
#include "fs/core/filesystem.h"
#include "journal/journal.h"

namespace lunfs {
namespace {

constexpr uint64_t kLunBytes = uint64_t{2} << 30;
constexpr uint64_t kImageBytes = uint64_t{1} << 30;  // the thin image's size; raw writes land in the same span

using bench::die;
using bench::must;

struct Args {
  std::string lun;
  uint64_t writes = 20000;
  uint64_t write_bytes = 4096;
  int rounds = 3;
  std::vector<int> threads;
};

// Distinct write offsets in [0, kImageBytes), in random order.
std::vector<uint64_t> offsets(const Args& a, uint64_t seed) {
  const uint64_t slots = kImageBytes / a.write_bytes;
  std::vector<uint64_t> picked;
  std::mt19937_64 rng(seed);
  std::vector<bool> used(slots);
  while (picked.size() < std::min(a.writes, slots)) {
    const uint64_t s = rng() % slots;
    if (used[s]) continue;
    used[s] = true;
    picked.push_back(s * a.write_bytes);
  }
  return picked;
}

// Runs `write(offset, buffer)` for every offset on `threads` threads; returns writes/s.
template <typename WriteFn>
double timed_writes(const std::vector<uint64_t>& offs, int threads, uint64_t write_bytes, WriteFn write) {
  std::atomic<size_t> next{0};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      AlignedBuffer buf(write_bytes);
      std::memset(buf.data(), 'a' + t, write_bytes);
      for (size_t i; (i = next.fetch_add(1)) < offs.size();) write(offs[i], buf.span());
    });
  }
  for (auto& th : pool) th.join();
  return static_cast<double>(offs.size()) / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double raw_round(const Args& a, int threads, uint64_t seed) {
  const int fd = ::open(a.lun.c_str(), O_RDWR | O_DIRECT);
  if (fd < 0) die("open " + a.lun, error(errno, "open"));
  const auto offs = offsets(a, seed);
  const double rate = timed_writes(offs, threads, a.write_bytes, [&](uint64_t off, std::span<std::byte> buf) {
    if (::pwrite(fd, buf.data(), buf.size(), static_cast<off_t>(off)) != static_cast<ssize_t>(buf.size())) {
      die("pwrite", error(errno, "raw write"));
    }
  });
  ::close(fd);
  return rate;
}

double lunfs_round(const Args& a, int threads, uint64_t seed) {
  auto dev = must(FileBlockDevice::open(a.lun), "open " + a.lun);
  const ondisk::Superblock sb = bench::format_lun(*dev, "thin");
  auto log = must(journal::Journal::open(*dev, sb, 0), "journal");
  NoLockManager lm;
  MountOptions opts;
  opts.logger = [](const std::string&) {};
  auto fs = must(FileSystem::mount(*dev, *log, lm, opts), "mount");
  const uint64_t image = must(fs->mknod(fs->root(), "image", S_IFREG | 0644, 0, Cred{}), "create").ino;
  SetAttr thin;
  thin.size = kImageBytes;
  if (auto r = fs->setattr(image, thin); !r) die("truncate", r.status());
  const auto offs = offsets(a, seed);
  const double rate = timed_writes(offs, threads, a.write_bytes, [&](uint64_t off, std::span<std::byte> buf) {
    auto n = fs->write(image, off, buf);
    if (!n) die("write", n.status());
  });
  if (auto st = fs->unmount(); !st) die("unmount", st);
  return rate;
}

// Writes the whole LUN file once (see the header), with bytes a virtual disk below the
// host cannot drop as zeros (it would keep those ranges unallocated, and allocate them at
// the first real write in clusters that serialise neighbouring writes).
void prepare_lun(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_DIRECT, 0600);
  if (fd < 0) die("create " + path, error(errno, "open"));
  AlignedBuffer chunk(8 << 20);
  std::memset(chunk.data(), 0xa5, chunk.size());  // not zeros: a virtual disk may skip zero writes
  for (uint64_t off = 0; off < kLunBytes; off += chunk.size()) {
    if (::pwrite(fd, chunk.data(), chunk.size(), static_cast<off_t>(off)) != static_cast<ssize_t>(chunk.size())) {
      die("fill " + path, error(errno, "pwrite"));
    }
  }
  ::fsync(fd);
  ::close(fd);
}

}  // namespace
}  // namespace lunfs

int main(int argc, char** argv) {
  using namespace lunfs;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s LUN_FILE [WRITES] [WRITE_KIB] [ROUNDS] [THREADS...]\n", argv[0]);
    return 2;
  }
  Args a;
  a.lun = argv[1];
  if (argc > 2) a.writes = std::strtoull(argv[2], nullptr, 10);
  if (argc > 3) a.write_bytes = std::strtoull(argv[3], nullptr, 10) * 1024;
  if (argc > 4) a.rounds = std::atoi(argv[4]);
  for (int i = 5; i < argc; ++i) a.threads.push_back(std::atoi(argv[i]));
  if (a.threads.empty()) a.threads = {1, 8};
  if (a.write_bytes == 0 || kImageBytes % a.write_bytes != 0) {
    std::fprintf(stderr, "WRITE_KIB must divide %llu MiB\n", static_cast<unsigned long long>(kImageBytes >> 20));
    return 2;
  }
  prepare_lun(a.lun);
  std::printf("round threads raw_writes_s lunfs_writes_s lunfs/raw (%llu writes of %llu KiB)\n",
              static_cast<unsigned long long>(a.writes), static_cast<unsigned long long>(a.write_bytes / 1024));
  std::vector<std::vector<double>> raw(a.threads.size()), fs(a.threads.size());
  for (int r = 0; r < a.rounds; ++r) {
    for (size_t k = 0; k < a.threads.size(); ++k) {
      const uint64_t seed = static_cast<uint64_t>(r * 100 + k);
      raw[k].push_back(raw_round(a, a.threads[k], seed));
      fs[k].push_back(lunfs_round(a, a.threads[k], seed));
      std::printf("%d %d %.0f %.0f %.2f\n", r + 1, a.threads[k], raw[k].back(), fs[k].back(), fs[k].back() / raw[k].back());
      std::fflush(stdout);
    }
  }
  // Scaling within each round (same-round baseline), then the median over rounds.
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  for (size_t k = 1; k < a.threads.size(); ++k) {
    std::vector<double> raw_scale, fs_scale;
    for (int r = 0; r < a.rounds; ++r) {
      raw_scale.push_back(raw[k][r] / raw[0][r]);
      fs_scale.push_back(fs[k][r] / fs[0][r]);
    }
    std::printf("median scaling %d -> %d threads: raw %.2fx, lunfs %.2fx; median lunfs/raw at %d threads %.2f\n",
                a.threads[0], a.threads[k], median(raw_scale), median(fs_scale), a.threads[k],
                median([&] {
                  std::vector<double> v;
                  for (int r = 0; r < a.rounds; ++r) v.push_back(fs[k][r] / raw[k][r]);
                  return v;
                }()));
  }
  return 0;
}

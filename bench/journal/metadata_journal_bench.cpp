// Metadata operations of the file-system core with the journal on (journal::Journal) vs
// the no-journal baseline (WriteThroughLog: every transaction written straight home), on
// the same kind of LUN file with O_DIRECT, in interleaved rounds (not a test; figures in
// docs/journal.md). Phases per round and mode, each on a freshly formatted LUN:
//   create N empty files, stat them (lookup), write 4 KiB into M of them + fsync each,
//   unlink all N;
// then ops/s per phase and mode, the median over rounds, and the ratio journal / baseline.
// Usage: metadata_journal_bench [--path FILE] [--files N] [--fsyncs M] [--rounds R]
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "bench/support/bench_lun.h"
#include "fs/device/block_device.h"
#include "fs/core/filesystem.h"
#include "fs/core/glock.h"
#include "fs/metadata_log.h"
#include "journal/journal.h"

namespace lunfs {
namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string path = "/var/tmp/lunfs-metadata-journal-bench.img";
  int files = 5000;
  int fsyncs = 300;
  int rounds = 3;
};

using bench::die;
using bench::must;

const char* const kPhases[] = {"create", "stat", "write 4 KiB + fsync", "unlink"};

// Runs the phases on a freshly formatted LUN; returns ops/s per phase.
std::vector<double> run_round(const Args& a, bool journaled) {
  auto dev = must(FileBlockDevice::open(a.path), "open " + a.path);
  const ondisk::Superblock sb = bench::format_lun(*dev, "meta");
  std::unique_ptr<MetadataLog> log;
  if (journaled) {
    log = must(journal::Journal::open(*dev, sb, 0), "journal");  // default 5 s timer, as mounted
  } else {
    log = std::make_unique<WriteThroughLog>(*dev);
  }
  NoLockManager lm;
  MountOptions opts;
  opts.logger = [](const std::string&) {};
  auto fs = must(FileSystem::mount(*dev, *log, lm, opts), "mount");
  const uint64_t root = fs->root();
  auto name = [](int i) { return 'f' + std::to_string(i); };
  std::vector<double> rates;
  auto timed = [&](int ops, auto body) {
    const auto t0 = Clock::now();
    body();
    rates.push_back(ops / std::chrono::duration<double>(Clock::now() - t0).count());
  };
  std::vector<uint64_t> inos(a.files);
  timed(a.files, [&] {
    for (int i = 0; i < a.files; ++i) {
      inos[i] = must(fs->mknod(root, name(i), S_IFREG | 0644, 0, Cred{}), "create").ino;
      (void)fs->forget(inos[i], 1);
    }
  });
  timed(a.files, [&] {
    for (int i = 0; i < a.files; ++i) (void)fs->forget(must(fs->lookup(root, name(i)), "stat").ino, 1);
  });
  const std::string block(4096, 'x');
  timed(a.fsyncs, [&] {
    for (int i = 0; i < a.fsyncs; ++i) {
      if (must(fs->write(inos[i], 0, std::as_bytes(std::span(block))), "write") != block.size()) {
        die("write", error(EIO, "short write"));
      }
      if (auto st = fs->fsync(inos[i], false); !st) die("fsync", st);
    }
  });
  timed(a.files, [&] {
    for (int i = 0; i < a.files; ++i) {
      if (auto st = fs->unlink(root, name(i)); !st) die("unlink", st);
    }
  });
  if (auto st = fs->unmount(); !st) die("unmount", st);
  return rates;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace
}  // namespace lunfs

int main(int argc, char** argv) {
  using namespace lunfs;
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--path") a.path = argv[i + 1];
    else if (k == "--files") a.files = std::max(1, std::atoi(argv[i + 1]));
    else if (k == "--fsyncs") a.fsyncs = std::max(1, std::atoi(argv[i + 1]));
    else if (k == "--rounds") a.rounds = std::max(1, std::atoi(argv[i + 1]));
    else {
      std::fprintf(stderr, "usage: metadata_journal_bench [--path FILE] [--files N] [--fsyncs M] [--rounds R]\n");
      return 2;
    }
  }
  a.fsyncs = std::min(a.fsyncs, a.files);
  // A written (not sparse) LUN file: a hole would make each flush commit the host file
  // system's journal, which would be measured instead of ours.
  const std::string make = "rm -f " + a.path + " && dd if=/dev/zero of=" + a.path +
                           " bs=1M count=1024 oflag=direct status=none";
  if (std::system(make.c_str()) != 0) die("create " + a.path, error(EIO, "dd failed"));
  std::map<bool, std::vector<std::vector<double>>> by_mode;  // journaled -> rounds -> phase rates
  for (int r = 0; r < a.rounds; ++r) {
    for (bool journaled : {false, true}) {  // interleaved: drift of the disk hits both alike
      by_mode[journaled].push_back(run_round(a, journaled));
    }
  }
  std::printf("%d files, %d fsyncs, %d rounds, LUN %s (O_DIRECT); median ops/s\n", a.files, a.fsyncs, a.rounds,
              a.path.c_str());
  std::printf("%-22s %14s %14s %8s\n", "phase", "no journal", "journal", "ratio");
  for (size_t p = 0; p < std::size(kPhases); ++p) {
    std::vector<double> base, jour;
    for (const auto& round : by_mode[false]) base.push_back(round[p]);
    for (const auto& round : by_mode[true]) jour.push_back(round[p]);
    std::printf("%-22s %14.0f %14.0f %8.2f\n", kPhases[p], median(base), median(jour), median(jour) / median(base));
  }
  std::remove(a.path.c_str());
  return 0;
}

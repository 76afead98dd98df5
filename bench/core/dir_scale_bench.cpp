// Directory scaling at the core (no FUSE): fills one directory to each size in SIZES, then
// times creating, looking up and removing 2000 more names there. "1M entries stay fast"
// means the per-operation times at 1M are close to those at 1k (the ratio is printed).
// Memory device, 1 KiB blocks (one inode per block: 1M inodes need 1 GiB), WriteThroughLog.
// Times are the process's CPU time (user + system), so that other load on the machine
// does not count; the core is single-threaded here.
// usage: dir_scale_bench [SIZES...]   (default: 1000 1000000)
#include <sys/stat.h>

#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "fs/core/filesystem.h"
#include "mkfs/formatter.h"

namespace lunfs {
namespace {

double now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

struct Times {
  double create_us, lookup_us, unlink_us;
};

int die(const Status& st) {
  std::fprintf(stderr, "%s\n", st.to_string().c_str());
  return 1;
}

int run(uint64_t size, Times* out) {
  constexpr int kOps = 2000;
  auto dev = make_memory_device(uint64_t{3} << 30);
  MkfsOptions o;
  o.cluster_name = "bench";
  o.fs_name = "dirscale";
  o.journals = 1;
  o.block_size = 1024;
  auto sb = plan_filesystem(*dev, o);
  if (!sb) return die(sb.status());
  if (auto st = write_filesystem(*dev, *sb); !st) return die(st);
  WriteThroughLog log(*dev);
  NoLockManager lm;
  MountOptions mo;
  mo.logger = [](const std::string&) {};
  auto fs = FileSystem::mount(*dev, log, lm, mo);
  if (!fs) return die(fs.status());
  auto d = (*fs)->mkdir((*fs)->root(), "d", 0755, {});
  if (!d) return die(d.status());
  for (uint64_t i = 0; i < size; ++i) {
    if (auto a = (*fs)->mknod(d->ino, "name-" + std::to_string(i), S_IFREG | 0644, 0, {}); !a) return die(a.status());
  }
  std::vector<std::string> fresh;
  for (int i = 0; i < kOps; ++i) fresh.push_back("fresh-" + std::to_string(i));
  std::mt19937_64 rng(1);
  double t = now();
  for (const auto& n : fresh) {
    if (auto a = (*fs)->mknod(d->ino, n, S_IFREG | 0644, 0, {}); !a) return die(a.status());
  }
  out->create_us = (now() - t) / kOps * 1e6;
  t = now();
  for (int i = 0; i < kOps; ++i) {
    if (auto a = (*fs)->lookup(d->ino, "name-" + std::to_string(rng() % size)); !a) return die(a.status());
  }
  out->lookup_us = (now() - t) / kOps * 1e6;
  t = now();
  for (const auto& n : fresh) {
    if (auto st = (*fs)->unlink(d->ino, n); !st) return die(st);
  }
  out->unlink_us = (now() - t) / kOps * 1e6;
  return (*fs)->unmount() ? 0 : 1;
}

}  // namespace
}  // namespace lunfs

int main(int argc, char** argv) {
  std::vector<uint64_t> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(std::strtoull(argv[i], nullptr, 10));
  if (sizes.empty()) sizes = {1000, 1000000};
  lunfs::Times base{};
  std::printf("entries create_us lookup_us unlink_us (ratio to the first size)\n");
  for (size_t k = 0; k < sizes.size(); ++k) {
    lunfs::Times t{};
    if (lunfs::run(sizes[k], &t) != 0) return 1;
    if (k == 0) base = t;
    std::printf("%llu %.1f %.1f %.1f (%.2fx %.2fx %.2fx)\n", static_cast<unsigned long long>(sizes[k]), t.create_us,
                t.lookup_us, t.unlink_us, t.create_us / base.create_us, t.lookup_us / base.lookup_us,
                t.unlink_us / base.unlink_us);
    std::fflush(stdout);
  }
  return 0;
}

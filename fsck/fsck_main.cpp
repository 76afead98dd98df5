// fsck.lunfs: checks a lunfs device. Exit codes as fsck(8): 0 clean, 4 errors left
// uncorrected, 8 operational error, 16 usage error.
#include <getopt.h>

#include <iostream>
#include <string>

#include "fs/block_device.h"
#include "fsck/checker.h"

namespace {

constexpr int kExitClean = 0;
constexpr int kExitUncorrected = 4;
constexpr int kExitOperational = 8;
constexpr int kExitUsage = 16;

const char* kUsage =
    "Usage: fsck.lunfs [-n] [-v] DEVICE\n"
    "\n"
    "  -n          check only; never write (repair is not implemented yet, so every run is -n)\n"
    "  -v          verbose: print each phase\n"
    "  -h, --help  this text\n"
    "\n"
    "Exit status: 0 no errors, 4 errors left uncorrected, 8 operational error, 16 usage error.\n";

int usage_error(const std::string& message) {
  std::cerr << "fsck.lunfs: " << message << "\nTry 'fsck.lunfs --help' for more information.\n";
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  bool verbose = false;
  bool check_only = false;
  static const option long_options[] = {{"help", no_argument, nullptr, 'h'}, {nullptr, 0, nullptr, 0}};
  opterr = 0;
  int c;
  // -a, -p and -y are what fsck(8) passes to every checker; they ask for repairs, which do
  // not exist yet, so they are accepted and the run stays read-only.
  while ((c = getopt_long(argc, argv, "nvhapy", long_options, nullptr)) != -1) {
    switch (c) {
      case 'n': check_only = true; break;
      case 'v': verbose = true; break;
      case 'a': case 'p': case 'y': break;
      case 'h': std::cout << kUsage; return kExitClean;
      default:
        if (optopt) return usage_error(std::string("unknown option -") + static_cast<char>(optopt));
        return usage_error(std::string("unknown option ") + argv[optind - 1]);
    }
  }
  if (optind >= argc) return usage_error("no device given");
  if (argc - optind > 1) return usage_error("more than one device given");
  const std::string path = argv[optind];

  auto dev = lunfs::FileBlockDevice::open(path, {.read_only = true});
  if (!dev) {
    std::cerr << "fsck.lunfs: " << dev.status().to_string() << "\n";
    return kExitOperational;
  }
  if (verbose && !(*dev)->fallback_note().empty()) std::cerr << "fsck.lunfs: note: " << (*dev)->fallback_note() << "\n";
  lunfs::FsckOptions options;
  if (verbose) options.verbose = &std::cout;
  auto report = lunfs::check_filesystem(**dev, options);
  if (!report) {
    std::cerr << "fsck.lunfs: " << path << ": " << report.status().message() << "\n";
    return kExitOperational;
  }
  for (const auto& f : report->findings) {
    std::cout << (f.kind == lunfs::FsckFinding::Kind::kError ? "ERROR: " : "warning: ") << f.text << "\n";
  }
  const auto& g = report->sb.geometry;
  std::cout << path << ": lunfs \"" << report->sb.cluster_name << ":" << report->sb.fs_name << "\", "
            << report->inodes << " inodes (" << report->directories << " directories), "
            << report->used_blocks << " of " << g.data_blocks_total() << " data blocks used; "
            << report->errors() << " error(s), " << report->warnings() << " warning(s)\n";
  if (report->errors() > 0) {
    if (!check_only) std::cout << "fsck.lunfs: repair is not implemented yet; nothing was changed\n";
    return kExitUncorrected;
  }
  return kExitClean;
}

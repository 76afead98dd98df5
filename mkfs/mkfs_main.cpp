// mkfs.lunfs: formats a device (block device or file) as lunfs. It never formats a lunfs
// that is in use, even with -f: not one mounted (or being checked) on this host (the device
// claim), nor one whose disk heartbeat shows it mounted on another host (ext4's mke2fs
// checks multi-mount protection the same way). A stale heartbeat (a crashed mount) does not
// stop -f.
#include <getopt.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <numeric>
#include <optional>
#include <string>

#include "fs/core/filesystem.h"
#include "fs/core/heartbeat.h"
#include "fs/device/block_device.h"
#include "fs/device/device_claim.h"
#include "fs/format/signature.h"
#include "mkfs/formatter.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

const char* kUsage =
    "Usage: mkfs.lunfs -t CLUSTER:FSNAME [options] DEVICE\n"
    "\n"
    "  -t CLUSTER:FSNAME  lock table: Corosync cluster name and a name for this file system,\n"
    "                     each 1-32 characters of A-Z a-z 0-9 _ -  (required)\n"
    "  -j JOURNALS        number of journals = nodes that can mount at once (default 8, max 256)\n"
    "  -J JOURNAL_MiB     size of each journal in MiB (default 128; less on small devices; min 8)\n"
    "  -b BLOCK_SIZE      block size in bytes, a power of two 1024..65536 (default 4096)\n"
    "  -r RGRP_MiB        resource group size in MiB, 32..2048 (default: scaled, up to 1024)\n"
    "  -L LABEL           label, up to 63 bytes\n"
    "  -U UUID            file system UUID (default: random)\n"
    "  -f                 overwrite an existing file system or partition table\n"
    "  -n, --dry-run      print what would be made; write nothing\n"
    "  -q                 quiet: print only errors\n"
    "  -h, --help         this text\n";

// Whether another host has the lunfs on `path` mounted: its heartbeats, watched through
// O_DIRECT (a cached read would never see another host's renewal). Not lunfs: nothing to see.
lunfs::Result<bool> mounted_elsewhere(const std::string& path) {
  auto dev = lunfs::FileBlockDevice::open(path, {.read_only = true, .direct = true});
  if (!dev) return dev.status();
  auto sb = lunfs::FileSystem::read_superblock(**dev);
  if (!sb) return false;
  std::vector<uint32_t> slots(sb->geometry.journal_count);
  std::iota(slots.begin(), slots.end(), 0u);
  lunfs::HeartbeatWatchOptions options;
  options.on_watch = [&](std::chrono::milliseconds window) {
    std::cerr << "mkfs.lunfs: a heartbeat says the lunfs on " << path << " is mounted; watching it for "
              << window.count() / 1000.0 << " s to tell a live mount from a crashed one\n";
  };
  LUNFS_ASSIGN(auto liveness, lunfs::watch_heartbeats(**dev, *sb, slots, lunfs::steady_monotonic_clock(), options));
  for (const auto& s : liveness) {
    if (s.state == lunfs::SlotLiveness::State::kLive && s.renewed) {
      std::cerr << "mkfs.lunfs: " << path << " holds a lunfs mounted on slot " << s.slot << " by "
                << lunfs::describe_heartbeat_holder(s.record) << " (its heartbeat was renewed while mkfs watched it)\n";
      return true;
    }
  }
  return false;
}

int usage_error(const std::string& message) {
  std::cerr << "mkfs.lunfs: " << message << "\n" << "Try 'mkfs.lunfs --help' for more information.\n";
  return kExitUsage;
}

bool parse_u32(const char* text, uint32_t& out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text, &end, 10);
  if (errno || end == text || *end != '\0' || text[0] == '-' || v > UINT32_MAX) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  lunfs::MkfsOptions options;
  bool force = false, dry_run = false, quiet = false, have_table = false;
  static const option long_options[] = {{"dry-run", no_argument, nullptr, 'n'},
                                        {"help", no_argument, nullptr, 'h'},
                                        {nullptr, 0, nullptr, 0}};
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, ":t:j:J:b:r:L:U:fnqh", long_options, nullptr)) != -1) {
    uint32_t v = 0;
    switch (c) {
      case 't': {
        std::string table = optarg;
        auto colon = table.find(':');
        if (colon == std::string::npos) return usage_error("-t wants CLUSTER:FSNAME, got '" + table + "'");
        options.cluster_name = table.substr(0, colon);
        options.fs_name = table.substr(colon + 1);
        if (!lunfs::ondisk::valid_name(options.cluster_name) || !lunfs::ondisk::valid_name(options.fs_name)) {
          return usage_error("'" + table + "': cluster and file system names must each be 1-32 "
                             "characters of A-Z a-z 0-9 _ -");
        }
        have_table = true;
        break;
      }
      case 'j':
        if (!parse_u32(optarg, v) || v < 1 || v > 256) return usage_error("-j wants a number of journals from 1 to 256");
        options.journals = v;
        break;
      case 'J':
        if (!parse_u32(optarg, v) || v < 8 || v > 4096) return usage_error("-J wants a journal size in MiB from 8 to 4096");
        options.journal_mib = v;
        break;
      case 'b':
        if (!parse_u32(optarg, v) || v < 1024 || v > 65536 || (v & (v - 1))) {
          return usage_error("-b wants a power of two from 1024 to 65536");
        }
        options.block_size = v;
        break;
      case 'r':
        if (!parse_u32(optarg, v) || v < 32 || v > 2048) return usage_error("-r wants a resource group size in MiB from 32 to 2048");
        options.rgrp_mib = v;
        break;
      case 'L':
        options.label = optarg;
        if (options.label.size() > 63) return usage_error("label longer than 63 bytes");
        break;
      case 'U': {
        auto uuid = lunfs::ondisk::parse_uuid(optarg);
        if (!uuid) return usage_error(uuid.status().message());
        options.uuid = *uuid;
        break;
      }
      case 'f': force = true; break;
      case 'n': dry_run = true; break;
      case 'q': quiet = true; break;
      case 'h': std::cout << kUsage; return kExitOk;
      case ':': return usage_error(std::string("option -") + static_cast<char>(optopt) + " needs a value");
      default:
        if (optopt) return usage_error(std::string("unknown option -") + static_cast<char>(optopt));
        return usage_error(std::string("unknown option ") + argv[optind - 1]);
    }
  }
  if (optind >= argc) return usage_error("no device given");
  if (argc - optind > 1) return usage_error("more than one device given");
  if (!have_table) return usage_error("-t CLUSTER:FSNAME is required");
  const std::string path = argv[optind];

  // Buffered I/O: mkfs writes scattered single blocks once, and on a sparse file or a thin
  // LUN, O_DIRECT writes into holes serialise on allocation (4.7 s vs well under 1 s for
  // 16 TiB here). write_filesystem flushes before each superblock, so nothing is left in
  // the page cache when it returns.
  auto dev = lunfs::FileBlockDevice::open(path, {.read_only = dry_run, .direct = false});
  if (!dev) {
    std::cerr << "mkfs.lunfs: " << dev.status().to_string() << "\n";
    return kExitError;
  }
  if (!(*dev)->fallback_note().empty() && !quiet) std::cerr << "mkfs.lunfs: note: " << (*dev)->fallback_note() << "\n";

  std::optional<lunfs::DeviceClaim> claim;  // held until mkfs exits
  if (!dry_run) {
    auto taken = lunfs::DeviceClaim::take(path, (*dev)->fd(), (*dev)->is_block_device());
    if (!taken) {
      std::cerr << "mkfs.lunfs: " << taken.status().message() << "; refusing to format it (-f does not override this)\n";
      return kExitError;
    }
    claim.emplace(std::move(*taken));
  }

  auto signatures = lunfs::detect_signatures(**dev);
  if (!signatures) {
    std::cerr << "mkfs.lunfs: " << signatures.status().to_string() << "\n";
    return kExitError;
  }
  if (!signatures->empty() && !force) {
    for (const auto& s : *signatures) {
      std::cerr << "mkfs.lunfs: " << path << " contains a " << s.what << " (signature at byte " << s.offset << ")\n";
    }
    std::cerr << "mkfs.lunfs: refusing to overwrite it; use -f to format anyway\n";
    return kExitError;
  }
  if (!dry_run) {
    auto elsewhere = mounted_elsewhere(path);
    if (!elsewhere) {
      std::cerr << "mkfs.lunfs: " << path << ": " << elsewhere.status().to_string() << "\n";
      return kExitError;
    }
    if (*elsewhere) {
      std::cerr << "mkfs.lunfs: refusing to format a mounted file system (-f does not override this); unmount it "
                   "on that host first\n";
      return kExitError;
    }
  }

  auto sb = lunfs::plan_filesystem(**dev, options);
  if (!sb) {
    std::cerr << "mkfs.lunfs: " << path << ": " << sb.status().message() << "\n";
    return kExitError;
  }
  if (!quiet) {
    if (dry_run) std::cout << "Dry run: nothing will be written.\n";
    std::cout << lunfs::describe_filesystem(**dev, *sb);
  }
  if (dry_run) return kExitOk;
  if (auto st = lunfs::write_filesystem(**dev, *sb); !st) {
    std::cerr << "mkfs.lunfs: writing " << path << " failed: " << st.to_string()
              << "\nmkfs.lunfs: the device does not hold a usable file system\n";
    return kExitError;
  }
  if (!quiet) std::cout << "Done.\n";
  return kExitOk;
}

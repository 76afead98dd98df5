// fsck.lunfs: checks a lunfs device, after replaying its dirty journals, and repairs it
// (fsck/repair.h). Exit codes as fsck(8): 0 clean, 1 errors corrected (journals replayed,
// repairs made) and none left, 4 errors left uncorrected, 8 operational error (including:
// the device is in use on this host), 16 usage error.
//
// Repairs are written under the same rule as journal replay, below: only in repair mode
// and with --all-nodes-unmounted. -y repairs everything; -p and -a (preen) repair only
// when every repair is safe (fsck/repair.h) and otherwise write nothing and exit 4.
//
// Journal policy (docs/journal.md, "fsck"): the check always judges the file system as it
// will be after replay. fsck writes the replay to the LUN only in repair mode and only when
// the admin says every node has unmounted it (--all-nodes-unmounted): lunfs is a shared-disk
// file system and no host can see from the LUN alone whether another host has it mounted,
// while replaying a live node's journal under it would corrupt the file system. Otherwise
// (and always with -n) the replay goes into an in-memory overlay and the LUN is not written.
//
// Other hosts' mounts show in the disk heartbeats: fsck watches them first and refuses a
// file system whose heartbeat is renewed meanwhile (exit 8) unless --ignore-heartbeat; a
// stale one (a crashed mount) is a warning, and repair mode with --all-nodes-unmounted marks
// it clean along with the replay.
#include <getopt.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <optional>
#include <string>

#include "fs/core/heartbeat.h"
#include "fs/device/block_device.h"
#include "fs/device/device_claim.h"
#include "fsck/checker.h"
#include "fsck/journal_recovery.h"
#include "fsck/overlay_device.h"
#include "fsck/progress.h"
#include "fsck/repair.h"

namespace {

constexpr int kExitClean = 0;
constexpr int kExitCorrected = 1;
constexpr int kExitUncorrected = 4;
constexpr int kExitOperational = 8;
constexpr int kExitUsage = 16;

const char* kUsage =
    "Usage: fsck.lunfs [-n | -y | -p | -a] [--all-nodes-unmounted] [--ignore-heartbeat] [-v] [-q] DEVICE\n"
    "\n"
    "  -n                     check only: write nothing. Dirty journals are replayed into\n"
    "                         memory, so the check sees the file system as after replay.\n"
    "  -y                     repair mode (the default): with --all-nodes-unmounted, replay\n"
    "                         dirty journals on the device, check, and repair every error:\n"
    "                         bitmaps and counts rebuilt, bad entries and extents dropped\n"
    "                         (the data lost named file by file), lost files reconnected in\n"
    "                         /lost+found, a damaged superblock restored from the backup.\n"
    "  -p, -a                 preen: as -y, but only when every repair is safe (nothing a\n"
    "                         user stored is lost or moved); otherwise nothing is written.\n"
    "  --all-nodes-unmounted  the admin's word that no node of the cluster has the file\n"
    "                         system mounted; fsck cannot see other hosts, so it replays\n"
    "                         journals and repairs only with it, and marks stale heartbeats\n"
    "                         (crashed mounts) clean. A mount on this host is always refused.\n"
    "  --ignore-heartbeat     check even though a heartbeat shows the file system mounted on\n"
    "                         another host (a check of a mounted file system reports changes\n"
    "                         in flight as errors). Without it fsck watches the heartbeats\n"
    "                         first, up to two heartbeat intervals and a second, and refuses\n"
    "                         one that is renewed meanwhile.\n"
    "  -v                     verbose: print each phase\n"
    "  -q                     quiet: no progress bar (there is none either when stdout or\n"
    "                         stderr is not a terminal)\n"
    "  -h, --help             this text\n"
    "\n"
    "Exit status: 0 no errors (a journal that needs replay is a warning under -n),\n"
    "1 errors corrected (journals replayed, repairs made) and none left, 4 errors left\n"
    "uncorrected (or replay and repairs refused),\n"
    "8 operational error (for example: the device is mounted on this host or another), 16 usage error.\n";

int usage_error(const std::string& message) {
  std::cerr << "fsck.lunfs: " << message << "\nTry 'fsck.lunfs --help' for more information.\n";
  return kExitUsage;
}

void print_finding(const lunfs::FsckFinding& f) {
  std::cout << (f.kind == lunfs::FsckFinding::Kind::kError ? "ERROR: " : "warning: ") << f.text << "\n";
}

int operational_error(const std::string& path, const lunfs::Status& st) {
  std::cerr << "fsck.lunfs: " << path << ": " << st.message() << "\n";
  return kExitOperational;
}

std::string slot_list(const std::vector<lunfs::DirtyJournal>& dirty) {
  std::string s;
  for (const auto& d : dirty) s += (s.empty() ? "" : ", ") + std::to_string(d.slot);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  bool verbose = false;
  bool quiet = false;
  bool check_only = false;
  bool repair_flag = false;
  bool preen = false;
  bool all_nodes_unmounted = false;
  bool ignore_heartbeat = false;
  enum { kAllNodesUnmounted = 1000, kIgnoreHeartbeat };
  static const option long_options[] = {{"help", no_argument, nullptr, 'h'},
                                        {"all-nodes-unmounted", no_argument, nullptr, kAllNodesUnmounted},
                                        {"ignore-heartbeat", no_argument, nullptr, kIgnoreHeartbeat},
                                        {nullptr, 0, nullptr, 0}};
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "nvqhapy", long_options, nullptr)) != -1) {
    switch (c) {
      case 'n': check_only = true; break;
      case 'v': verbose = true; break;
      case 'q': quiet = true; break;
      case 'a': case 'p': repair_flag = true; preen = true; break;
      case 'y': repair_flag = true; break;
      case kAllNodesUnmounted: all_nodes_unmounted = true; break;
      case kIgnoreHeartbeat: ignore_heartbeat = true; break;
      case 'h': std::cout << kUsage; return kExitClean;
      default:
        if (optopt) return usage_error(std::string("unknown option -") + static_cast<char>(optopt));
        return usage_error(std::string("unknown option ") + argv[optind - 1]);
    }
  }
  if (check_only && repair_flag) return usage_error("-n (write nothing) contradicts -y, -p and -a (repair)");
  if (optind >= argc) return usage_error("no device given");
  if (argc - optind > 1) return usage_error("more than one device given");
  const std::string path = argv[optind];

  auto dev = lunfs::FileBlockDevice::open(path, {.read_only = check_only});
  if (!dev) {
    std::cerr << "fsck.lunfs: " << dev.status().to_string() << "\n";
    return kExitOperational;
  }
  if (verbose && !(*dev)->fallback_note().empty()) std::cerr << "fsck.lunfs: note: " << (*dev)->fallback_note() << "\n";
  // Held until fsck exits: no mount.lunfs on this host can start meanwhile.
  auto claim = lunfs::DeviceClaim::take(path, (*dev)->fd(), (*dev)->is_block_device());
  if (!claim) {
    return operational_error(path, lunfs::error(claim.err(), claim.status().message() + "; unmount it first (or "
                                                "wait for the fsck.lunfs or mkfs.lunfs that holds it to finish)"));
  }
  auto located = lunfs::locate_superblock(**dev);
  if (!located) return operational_error(path, located.status());
  const bool write = !check_only && all_nodes_unmounted;

  // Mounts on other hosts. fsck writes no heartbeat, so a damaged block is simply watched
  // (the check reports the damage).
  std::vector<lunfs::SlotLiveness> stale_heartbeats;
  if (!ignore_heartbeat) {
    std::vector<uint32_t> slots(located->sb.geometry.journal_count);
    std::iota(slots.begin(), slots.end(), 0u);
    lunfs::HeartbeatWatchOptions watch_options;
    watch_options.watch_damaged = true;
    watch_options.on_watch = [&](std::chrono::milliseconds window) {
      std::cout << "fsck.lunfs: a heartbeat says the file system is mounted; watching it for "
                << window.count() / 1000.0 << " s to tell a live mount from a crashed one\n" << std::flush;
    };
    auto liveness =
        lunfs::watch_heartbeats(**dev, located->sb, slots, lunfs::steady_monotonic_clock(), watch_options);
    if (!liveness) return operational_error(path, liveness.status());
    for (const auto& s : *liveness) {
      if (s.state == lunfs::SlotLiveness::State::kLive && s.renewed) {
        std::cerr << "fsck.lunfs: " << path << ": slot " << s.slot << " is mounted by "
                  << lunfs::describe_heartbeat_holder(s.record)
                  << ": its heartbeat was renewed while fsck watched it. Unmount it there first (or pass "
                     "--ignore-heartbeat to check it anyway)\n";
        return kExitOperational;
      }
      if (s.state == lunfs::SlotLiveness::State::kStale) stale_heartbeats.push_back(s);
    }
  }
  auto dirty = lunfs::find_dirty_journals(**dev, located->sb);
  if (!dirty) return operational_error(path, dirty.status());

  lunfs::BlockDevice* target = dev->get();
  lunfs::OverlayDevice overlay(**dev);
  bool replayed = false;
  std::vector<lunfs::FsckFinding> journal_findings;
  if (!dirty->empty()) {
    if (!write) target = &overlay;
    const auto start = std::chrono::steady_clock::now();
    auto reports = lunfs::replay_journals(*target, located->sb, *dirty);
    if (!reports) return operational_error(path, reports.status());
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    for (size_t i = 0; i < dirty->size(); ++i) {
      const auto& d = (*dirty)[i];
      if (write) {
        std::cout << "fsck.lunfs: " << (*reports)[i].to_string() << "\n";
      } else {
        journal_findings.push_back({check_only ? lunfs::FsckFinding::Kind::kWarning : lunfs::FsckFinding::Kind::kError,
                                    "slot " + std::to_string(d.slot) + ": journal needs replay: " + d.state});
      }
    }
    replayed = write;
    if (!write && !check_only) {  // the journal findings above are errors: exit 4
      std::cout << "fsck.lunfs: not replaying the journal(s) of slot(s) " << slot_list(*dirty)
                << ": lunfs is a shared-disk file system and fsck cannot see whether another host has it "
                   "mounted. Unmount it on every node, then run again with --all-nodes-unmounted (or mount "
                   "it, which replays its own slot's journal). Nothing was written; the check below is of the "
                   "file system as it will be after replay.\n";
    } else if (!write) {
      std::cout << "fsck.lunfs: the journal(s) of slot(s) " << slot_list(*dirty)
                << " need replay; checking the file system as it will be after replay (replayed in memory, "
                   "nothing written)\n";
    }
    if (verbose) {
      std::cout << "Journal replay of slot(s) " << slot_list(*dirty) << (write ? "" : " (in memory only)") << ": "
                << ms.count() << " ms\n";
    }
  }

  bool cleaned = false;
  for (const auto& s : stale_heartbeats) {
    const std::string what = s.damage.empty() ? "heartbeat of " + lunfs::describe_heartbeat_holder(s.record)
                                              : "damaged heartbeat";
    char watched[32];
    std::snprintf(watched, sizeof watched, "%.1f", std::chrono::duration<double>(s.unchanged_for).count());
    if (!write) {
      std::cout << "fsck.lunfs: slot " << s.slot << ": " << what << " unchanged for " << watched
                << " s: a mount that crashed (or lost the LUN)\n";
      continue;
    }
    if (auto st = lunfs::mark_heartbeat_clean(**dev, located->sb, s); !st) return operational_error(path, st);
    std::cout << "fsck.lunfs: slot " << s.slot << ": " << what << " unchanged for " << watched
              << " s: marked clean\n";
    cleaned = true;
  }

  lunfs::FsckOptions options;
  if (verbose) options.verbose = &std::cout;
  // -v prints the phases itself; the bar would only interleave with them.
  lunfs::ProgressBar bar("fsck.lunfs", !quiet && !verbose);
  if (bar.active()) {
    options.on_progress = [&bar](const std::string& phase, uint64_t done, uint64_t total) {
      bar.update(phase, done, total);
    };
  }
  std::optional<lunfs::FsckReport> report;
  bool repaired = false;
  bool refused = false;
  if (write) {
    lunfs::RepairOptions repair_options;
    repair_options.preen = preen;
    repair_options.verbose = options.verbose;
    repair_options.on_progress = options.on_progress;
    auto outcome = lunfs::repair_filesystem(**dev, repair_options);
    bar.finish();
    if (!outcome) return operational_error(path, outcome.status());
    for (const auto& f : outcome->first.findings) print_finding(f);
    for (const auto& a : outcome->actions) {
      std::cout << (outcome->refused ? (a.safe ? "would repair: " : "NOT SAFE TO PREEN: ") : "repaired: ") << a.text << "\n";
    }
    if (outcome->refused) {
      std::cout << "fsck.lunfs: UNEXPECTED INCONSISTENCY: a repair would lose or move data, which preen (-p, -a) "
                   "does not do; "
                << (outcome->wrote ? "only the safe repairs of an earlier round were made" : "nothing was repaired")
                << ". Run fsck.lunfs -y --all-nodes-unmounted.\n";
    } else if (outcome->wrote) {
      std::cout << "fsck.lunfs: checked again after the repairs:\n";
      for (const auto& f : outcome->last.findings) print_finding(f);
    }
    repaired = outcome->wrote;
    refused = outcome->refused;
    report = outcome->last;
  } else {
    auto checked = lunfs::check_filesystem(*target, options);
    bar.finish();
    if (!checked) return operational_error(path, checked.status());
    report = *checked;
    report->findings.insert(report->findings.begin(), journal_findings.begin(), journal_findings.end());
    for (const auto& f : report->findings) print_finding(f);
  }
  const auto& g = report->sb.geometry;
  std::cout << path << ": lunfs \"" << report->sb.cluster_name << ":" << report->sb.fs_name << "\", "
            << report->inodes << " inodes (" << report->directories << " directories), "
            << report->used_blocks << " of " << g.data_blocks_total() << " data blocks used; "
            << report->errors() << " error(s), " << report->warnings() << " warning(s)"
            << (repaired ? " after repair" : "") << "\n";
  if (report->errors() > 0 || refused) {
    if (!check_only && !write && dirty->empty()) {
      std::cout << "fsck.lunfs: not repairing: lunfs is a shared-disk file system and fsck cannot see whether "
                   "another host has it mounted. Unmount it on every node, then run again with "
                   "--all-nodes-unmounted. Nothing was written.\n";
    }
    return kExitUncorrected;
  }
  return replayed || cleaned || repaired ? kExitCorrected : kExitClean;
}

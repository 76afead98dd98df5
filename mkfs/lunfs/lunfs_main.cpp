// `lunfs`: the lunfs admin command. `lunfs locks LOCKSPACE` prints the lock table of a
// running node (resources, granted/converting/waiting locks per node, LVB state) through
// the node's root-only control socket, like `dlm_tool lockdebug`. `lunfs tune` changes the
// label, lock table and UUID of an unmounted file system (tune.h); `lunfs status` shows
// slots, heartbeats, rgrp usage, glocks and recovery (status.h).
#include <getopt.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "dlm/control.h"
#include "fsck/progress.h"
#include "mkfs/lunfs/status.h"
#include "mkfs/lunfs/tune.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

const char* kUsage =
    "usage: lunfs locks [--stats] LOCKSPACE\n"
    "                                dump the lock space from this node, or (--stats) the\n"
    "                                messages it sent and received and the callbacks it got\n"
    "       lunfs tune [-L LABEL] [-t CLUSTER:FSNAME] [-U UUID|random] [-q] DEVICE\n"
    "                                change the label, lock table or UUID of an unmounted file system\n"
    "       lunfs status [--json] [MOUNTPOINT|DEVICE]\n"
    "                                slots, heartbeats, rgrp usage, glocks and recovery\n"
    "                                (every lunfs mounted on this host when none is named)\n"
    "       lunfs help               this text\n"
    "\n"
    "tune options:\n"
    "  -L LABEL           new label, up to 63 bytes ('' clears it)\n"
    "  -t CLUSTER:FSNAME  new lock table: Corosync cluster name and file system name, each\n"
    "                     1-32 characters of A-Z a-z 0-9 _ -\n"
    "  -U UUID|random     new UUID (the checksums stay valid: nothing else is rewritten)\n"
    "  -q                 quiet: no progress bar and no summary\n"
    "status options:\n"
    "  --json             JSON for scripts instead of text\n";

int usage_error(const std::string& message) {
  std::cerr << "lunfs: " << message << "\nTry 'lunfs help' for more information.\n";
  return kExitUsage;
}

int locks_command(int argc, char** argv) {
  const bool stats = argc == 4 && std::string(argv[2]) == "--stats";
  if (argc != 3 && !stats) return usage_error("locks wants one LOCKSPACE, after --stats if given");
  const std::string lockspace = argv[argc - 1];
  std::string text;
  // Only a mount serves the counters (fuse/main.cpp); lunfs-dlm-node serves the dump.
  auto s = stats ? lunfs::dlm::control_request(lunfs::dlm::control_service_name(lockspace), lunfs::dlm::kControlStats, &text)
                 : lunfs::dlm::control_dump(lockspace, &text);
  if (s == lunfs::dlm::Status::kNotFound) {
    std::fprintf(stderr, "lunfs locks: no node serves lock space %s here\n", lockspace.c_str());
    return kExitError;
  }
  if (s != lunfs::dlm::Status::kOk) {
    std::fprintf(stderr, "lunfs locks: %s (root only)\n", std::string(lunfs::dlm::status_name(s)).c_str());
    return kExitError;
  }
  std::fwrite(text.data(), 1, text.size(), stdout);
  return kExitOk;
}

int tune_command(int argc, char** argv) {
  lunfs::TuneRequest request;
  bool quiet = false;
  optind = 2;  // after "lunfs tune"
  opterr = 0;
  int c;
  while ((c = getopt(argc, argv, ":L:t:U:q")) != -1) {
    switch (c) {
      case 'L': request.label = optarg; break;
      case 't': {
        const std::string table = optarg;
        const auto colon = table.find(':');
        if (colon == std::string::npos) return usage_error("-t wants CLUSTER:FSNAME, got '" + table + "'");
        request.cluster_name = table.substr(0, colon);
        request.fs_name = table.substr(colon + 1);
        break;
      }
      case 'U': {
        const std::string text = optarg;
        if (text == "random") {
          request.uuid = lunfs::random_uuid_v4();
        } else {
          auto uuid = lunfs::ondisk::parse_uuid(text);
          if (!uuid) return usage_error(uuid.status().message());
          request.uuid = *uuid;
        }
        break;
      }
      case 'q': quiet = true; break;
      case ':': return usage_error(std::string("tune: option -") + static_cast<char>(optopt) + " needs a value");
      default: return usage_error(std::string("tune: unknown option -") + static_cast<char>(optopt));
    }
  }
  if (optind >= argc) return usage_error("tune: no device given");
  if (argc - optind > 1) return usage_error("tune: more than one device given");
  if (auto st = lunfs::validate_tune_request(request); !st) return usage_error("tune: " + st.message());
  const std::string path = argv[optind];

  lunfs::ProgressBar bar("lunfs tune", !quiet);
  lunfs::TuneOptions options;
  options.progress = [&bar](uint64_t done, uint64_t total) { bar.update("sweeping the journals", done, total); };
  options.note = [&bar](const std::string& text) {
    bar.finish();
    std::cerr << "lunfs tune: " << text << "\n";
  };
  auto outcome = lunfs::tune_filesystem(path, request, options);
  bar.finish();
  if (!outcome) {
    std::cerr << "lunfs tune: " << outcome.status().message() << "; nothing was changed\n";
    return kExitError;
  }
  if (quiet) return kExitOk;
  const auto& b = outcome->before;
  const auto& a = outcome->after;
  auto line = [](const char* what, const std::string& from, const std::string& to) {
    if (from == to) std::cout << "  " << what << ": " << to << " (unchanged)\n";
    else std::cout << "  " << what << ": " << from << " -> " << to << "\n";
  };
  std::cout << path << ":\n";
  line("label", "\"" + b.label + "\"", "\"" + a.label + "\"");
  line("lock table", b.cluster_name + ":" + b.fs_name, a.cluster_name + ":" + a.fs_name);
  line("UUID", lunfs::ondisk::uuid_to_string(b.uuid), lunfs::ondisk::uuid_to_string(a.uuid));
  if (outcome->done.empty()) std::cout << "Nothing to write: both superblocks hold these values already.\n";
  for (const auto& d : outcome->done) std::cout << "  " << d << "\n";
  return kExitOk;
}

int status_command(int argc, char** argv) {
  bool json = false;
  std::vector<std::string> targets;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") json = true;
    else if (!arg.empty() && arg[0] == '-') return usage_error("status: unknown option " + arg);
    else targets.push_back(arg);
  }
  if (targets.size() > 1) return usage_error("status: one MOUNTPOINT or DEVICE at most");
  const bool all = targets.empty();
  if (all) {
    for (const auto& [mountpoint, device] : lunfs::lunfs_mounts()) targets.push_back(mountpoint);
  }
  int rc = kExitOk;
  std::vector<std::string> parts;
  for (const auto& t : targets) {
    auto report = lunfs::gather_status(t);
    if (!report) {
      std::cerr << "lunfs status: " << report.status().to_string() << "\n";
      rc = kExitError;
      continue;
    }
    parts.push_back(json ? lunfs::status_json(*report) : lunfs::status_text(*report));
  }
  if (json && all) {  // a list, even of one, so that a script need not guess
    std::cout << "[";
    for (size_t i = 0; i < parts.size(); ++i) std::cout << (i ? ",\n" : "\n") << parts[i];
    std::cout << "]\n";
  } else {
    for (size_t i = 0; i < parts.size(); ++i) std::cout << (i ? "\n" : "") << parts[i];
    if (all && !json && targets.empty()) std::cout << "No lunfs is mounted on this host.\n";
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  const std::string cmd = argv[1];
  if (cmd == "locks") return locks_command(argc, argv);
  if (cmd == "tune") return tune_command(argc, argv);
  if (cmd == "status") return status_command(argc, argv);
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    std::cout << kUsage;
    return kExitOk;
  }
  return usage_error("unknown command '" + cmd + "'");
}

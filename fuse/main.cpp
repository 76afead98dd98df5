// mount.lunfs: opens the LUN, mounts the lunfs core on it and serves it through a
// multi-threaded FUSE low-level session until unmounted or signalled (SIGTERM, SIGINT,
// SIGHUP unmount cleanly: the session ends, the core syncs and releases its locks).
// Before it mounts it makes sure nobody else has the LUN: this host's exclusive claim on the
// device, then the disk heartbeats for other hosts (multi-mount protection, README.md
// "Mounting"); while mounted it renews its slot's heartbeat, and a clean unmount marks it
// clean.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "fs/core/filesystem.h"
#include "fs/core/heartbeat.h"
#include "fs/device/block_device.h"
#include "fs/device/device_claim.h"
#include "fs/metadata_log.h"
#include "fuse/lowlevel.h"
#include "journal/check.h"
#include "journal/journal.h"
#include "fuse/mount_options.h"

using namespace lunfs;

int main(int argc, char** argv) {
  // Keep large buffers in the heap: glibc would mmap/munmap each one, and munmap's TLB
  // shootdowns across the session threads are expensive (see fs/device/scratch_buffer.h).
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  std::vector<std::string> args(argv + 1, argv + argc);
  auto cmd = parse_mount_command(args);
  if (!cmd) {
    std::fprintf(stderr, "mount.lunfs: %s\n%s", cmd.status().message().c_str(), mount_usage().c_str());
    return 1;
  }
  if (cmd->lockproto != "nolock") {
    std::fprintf(stderr, "mount.lunfs: lockproto=%s is not available yet in this build; use lockproto=nolock\n",
                 cmd->lockproto.c_str());
    return 32;
  }
  auto dev = FileBlockDevice::open(cmd->device, {cmd->read_only, true});
  if (!dev) {
    std::fprintf(stderr, "mount.lunfs: %s: %s\n", cmd->device.c_str(), dev.status().to_string().c_str());
    return 32;
  }
  if (!(*dev)->fallback_note().empty()) std::fprintf(stderr, "mount.lunfs: %s\n", (*dev)->fallback_note().c_str());
  // Held for the life of the daemon (the descriptor goes with the last process): no other
  // mount.lunfs, fsck.lunfs or mkfs.lunfs of this host can use the device meanwhile.
  auto claim = DeviceClaim::take(cmd->device, (*dev)->fd(), (*dev)->is_block_device());
  if (!claim) {
    std::fprintf(stderr, "mount.lunfs: cannot mount %s (slot %u): %s%s\n", cmd->device.c_str(), cmd->slot,
                 claim.status().message().c_str(),
                 claim.err() == EBUSY ? "; a second mount of a mounted LUN would corrupt it" : "");
    return 32;
  }
  // A writable mount replays its slot's journal and logs every metadata change to it; a
  // read-only mount writes nothing (and refuses a journal that needs replay).
  auto sb = FileSystem::read_superblock(**dev);
  if (!sb) {
    std::fprintf(stderr, "mount.lunfs: cannot mount %s: %s\n", cmd->device.c_str(), sb.status().to_string().c_str());
    return 32;
  }
  if (cmd->slot >= sb->geometry.journal_count) {
    std::fprintf(stderr, "mount.lunfs: slot %u does not exist (the file system has %u journals)\n", cmd->slot,
                 sb->geometry.journal_count);
    return 32;
  }
  // Other hosts: lockproto=nolock is a single-host mount, so a live heartbeat in any slot
  // refuses it, not only one in its own slot.
  std::vector<uint32_t> slots(sb->geometry.journal_count);
  std::iota(slots.begin(), slots.end(), 0u);
  HeartbeatWatchOptions watch_options;
  watch_options.interval = cmd->heartbeat_interval;
  watch_options.watch_damaged = cmd->heartbeat_force;
  watch_options.on_watch = [&](std::chrono::milliseconds window) {
    std::fprintf(stderr, "mount.lunfs: %s: a heartbeat says the file system is mounted; watching it for %.1f s to "
                 "tell a live mount from a crashed one\n", cmd->device.c_str(), window.count() / 1000.0);
  };
  auto liveness = watch_heartbeats(**dev, *sb, slots, steady_monotonic_clock(), watch_options);
  if (!liveness) {
    std::fprintf(stderr, "mount.lunfs: cannot mount %s (slot %u): %s\n", cmd->device.c_str(), cmd->slot,
                 liveness.status().to_string().c_str());
    return 32;
  }
  for (const auto& s : *liveness) {
    const std::string where = s.slot == cmd->slot ? "slot " + std::to_string(s.slot) + " is in use"
                                                  : "the file system is mounted on slot " + std::to_string(s.slot);
    if (s.state == SlotLiveness::State::kLive && s.renewed) {
      std::fprintf(stderr, "mount.lunfs: cannot mount %s (slot %u): %s by %s: its heartbeat was renewed "
                   "while this mount watched it. Unmount it there first; two hosts writing one file system "
                   "corrupt it (lockproto=nolock is a single-host mount)\n", cmd->device.c_str(), cmd->slot,
                   where.c_str(), describe_heartbeat_holder(s.record).c_str());
      return 32;
    }
    if (s.state == SlotLiveness::State::kDamaged) {
      std::fprintf(stderr, "mount.lunfs: cannot mount %s (slot %u): the heartbeat block of slot %u is damaged (%s), "
                   "so whether another host has the file system mounted cannot be told. If no host has it "
                   "mounted, mount with -o heartbeat_force: the block is then watched for %lld s and taken "
                   "over if nobody rewrites it\n", cmd->device.c_str(), cmd->slot, s.slot, s.damage.c_str(),
                   static_cast<long long>((heartbeat_lease(cmd->heartbeat_interval) + kHeartbeatMargin).count() / 1000));
      return 32;
    }
    if (s.state == SlotLiveness::State::kStale) {
      std::fprintf(stderr, "mount.lunfs: slot %u: heartbeat %s unchanged for %.1f s: taking it as a crashed "
                   "mount%s\n", s.slot,
                   s.damage.empty() ? ("of " + describe_heartbeat_holder(s.record)).c_str() : "(damaged)",
                   std::chrono::duration<double>(s.unchanged_for).count(),
                   s.slot == cmd->slot ? "; taking the slot over" : "; its journal is replayed when it is mounted again");
    }
  }
  // A read-only mount writes nothing, its heartbeat included: it does not keep another host
  // from mounting the file system (ext4's read-only mounts skip multi-mount protection too).
  std::unique_ptr<SlotHeartbeat> heartbeat;
  if (!cmd->read_only) {
    auto hb = SlotHeartbeat::claim(**dev, *sb, cmd->slot, local_heartbeat_identity(0),
                                   std::chrono::duration_cast<std::chrono::milliseconds>(cmd->heartbeat_interval),
                                   steady_monotonic_clock(),
                                   [](const std::string& m) { std::fprintf(stderr, "mount.lunfs: %s\n", m.c_str()); });
    if (!hb) {
      std::fprintf(stderr, "mount.lunfs: cannot mount %s: %s\n", cmd->device.c_str(), hb.status().to_string().c_str());
      return 32;
    }
    heartbeat = std::move(*hb);
  }
  // Leaving without having mounted: nobody writes the slot any more, so the next mount
  // need not wait.
  auto give_up = [&](int rc) {
    if (heartbeat) {
      if (auto st = heartbeat->release(); !st) std::fprintf(stderr, "mount.lunfs: %s\n", st.to_string().c_str());
    }
    return rc;
  };

  std::unique_ptr<MetadataLog> log;
  if (cmd->read_only) {
    if (journal::check_journal(**dev, *sb, cmd->slot).dirty) {
      std::fprintf(stderr, "mount.lunfs: %s: the journal of slot %u needs replay, which a read-only mount cannot "
                   "do; mount it read-write once\n", cmd->device.c_str(), cmd->slot);
      return give_up(32);
    }
    log = std::make_unique<WriteThroughLog>(**dev);  // never written: the mount is read-only
  } else {
    auto journal = journal::Journal::open(**dev, *sb, cmd->slot, {.commit_interval = cmd->commit_interval});
    if (!journal) {
      std::fprintf(stderr, "mount.lunfs: %s: journal of slot %u: %s\n", cmd->device.c_str(), cmd->slot,
                   journal.status().to_string().c_str());
      return give_up(32);
    }
    if ((*journal)->replay_report().transactions > 0) {
      std::fprintf(stderr, "mount.lunfs: %s\n", (*journal)->replay_report().to_string().c_str());
    }
    log = std::move(*journal);
  }
  NoLockManager lm;
  MountOptions mo;
  mo.read_only = cmd->read_only;
  mo.noatime = cmd->noatime;
  mo.slot = cmd->slot;
  auto fs = FileSystem::mount(**dev, *log, lm, mo);
  if (!fs) {
    std::fprintf(stderr, "mount.lunfs: cannot mount %s: %s\n", cmd->device.c_str(), fs.status().to_string().c_str());
    return give_up(32);
  }

  FuseContext ctx;
  ctx.fs = fs->get();
  ctx.debug = cmd->debug;
  std::vector<std::string> fargs = {"mount.lunfs", "-o", "fsname=" + cmd->device + ",subtype=lunfs,default_permissions"};
  if (getuid() == 0) fargs.back() += ",allow_other";
  if (cmd->read_only) fargs.back() += ",ro";
  if (cmd->noatime) fargs.back() += ",noatime";  // shown in /proc/mounts; the kernel stops asking for atime
  for (const auto& o : cmd->fuse_options) {
    if (o != "allow_other" && o != "default_permissions") fargs.back() += "," + o;
  }
  if (cmd->debug) fargs.push_back("-d");
  std::vector<char*> cargs;
  for (auto& a : fargs) cargs.push_back(a.data());
  fuse_args fa = FUSE_ARGS_INIT(static_cast<int>(cargs.size()), cargs.data());
  fuse_session* se = fuse_session_new(&fa, &lunfs_fuse_ops(), sizeof(fuse_lowlevel_ops), &ctx);
  fuse_opt_free_args(&fa);  // libfuse may have copied the arguments into its own array
  if (!se) {
    std::fprintf(stderr, "mount.lunfs: cannot create the FUSE session\n");
    return give_up(32);
  }
  int rc = 32;
  if (fuse_set_signal_handlers(se) == 0) {
    if (fuse_session_mount(se, cmd->mountpoint.c_str()) == 0) {
      fuse_daemonize(cmd->foreground ? 1 : 0);
      if (heartbeat) heartbeat->start();  // here: a thread started before the fork would stay behind
      fuse_loop_config* cfg = fuse_loop_cfg_create();
      fuse_loop_cfg_set_max_threads(cfg, cmd->threads);
      fuse_loop_cfg_set_idle_threads(cfg, cmd->threads);
      // The loop returns the signal that ended it: SIGTERM, SIGINT and SIGHUP are requests
      // for a clean unmount, not failures.
      int loop = fuse_session_loop_mt(se, cfg);
      (*fs)->drain_io();  // replies of transfers still in flight go out while the session exists
      rc = loop == 0 || loop == SIGTERM || loop == SIGINT || loop == SIGHUP ? 0 : 1;
      fuse_loop_cfg_destroy(cfg);
      fuse_session_unmount(se);
    } else {
      std::fprintf(stderr, "mount.lunfs: cannot mount on %s\n", cmd->mountpoint.c_str());
    }
    fuse_remove_signal_handlers(se);
  }
  fuse_session_destroy(se);
  if (auto st = (*fs)->unmount(); !st) {
    std::fprintf(stderr, "mount.lunfs: unmount of %s: %s\n", cmd->device.c_str(), st.to_string().c_str());
    // The heartbeat stays "live" and goes stale: the next mount waits it out and replays.
    if (heartbeat) heartbeat->stop();
    return 1;
  }
  if (heartbeat) {
    if (auto st = heartbeat->release(); !st) {
      std::fprintf(stderr, "mount.lunfs: %s: cannot mark the heartbeat clean: %s\n", cmd->device.c_str(),
                   st.to_string().c_str());
      rc = 1;
    }
  }
  return rc;
}

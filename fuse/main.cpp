// mount.lunfs: opens the LUN, mounts the lunfs core on it and serves it through a
// multi-threaded FUSE low-level session until unmounted or signalled (SIGTERM, SIGINT,
// SIGHUP unmount cleanly: the session ends, the core syncs and releases its locks).
#include <malloc.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string>
#include <vector>

#include "fs/device/block_device.h"
#include "fs/core/filesystem.h"
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
  // A shared lock on the device for as long as this daemon runs: fsck.lunfs takes it
  // exclusively, so it never replays or checks under a live mount of this host, and a
  // mount never starts under a running fsck (fsck/device_claim.h).
  if (flock((*dev)->fd(), LOCK_SH | LOCK_NB) != 0) {
    std::fprintf(stderr, "mount.lunfs: %s: %s\n", cmd->device.c_str(),
                 errno == EWOULDBLOCK ? "fsck.lunfs is checking it on this host; mount it when fsck has finished"
                                      : "cannot lock the device");
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
  std::unique_ptr<MetadataLog> log;
  if (cmd->read_only) {
    if (journal::check_journal(**dev, *sb, cmd->slot).dirty) {
      std::fprintf(stderr, "mount.lunfs: %s: the journal of slot %u needs replay, which a read-only mount cannot "
                   "do; mount it read-write once\n", cmd->device.c_str(), cmd->slot);
      return 32;
    }
    log = std::make_unique<WriteThroughLog>(**dev);  // never written: the mount is read-only
  } else {
    auto journal = journal::Journal::open(**dev, *sb, cmd->slot, {.commit_interval = cmd->commit_interval});
    if (!journal) {
      std::fprintf(stderr, "mount.lunfs: %s: journal of slot %u: %s\n", cmd->device.c_str(), cmd->slot,
                   journal.status().to_string().c_str());
      return 32;
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
    return 32;
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
    return 32;
  }
  int rc = 32;
  if (fuse_set_signal_handlers(se) == 0) {
    if (fuse_session_mount(se, cmd->mountpoint.c_str()) == 0) {
      fuse_daemonize(cmd->foreground ? 1 : 0);
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
    rc = 1;
  }
  return rc;
}

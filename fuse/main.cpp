// mount.lunfs: opens the LUN, mounts the lunfs core on it and serves it through a
// multi-threaded FUSE low-level session until unmounted or signalled (SIGTERM, SIGINT,
// SIGHUP unmount cleanly: the session ends, the core syncs and releases its locks).
// lockproto=nolock: before it mounts it makes sure nobody else has the LUN: this host's
// exclusive claim on the device, then the disk heartbeats for other hosts (multi-mount
// protection, README.md "Mounting"). lockproto=corosync: it checks the lock table's cluster
// name against the running Corosync, joins the file system's lock space, claims a journal
// slot there and puts its glocks on the cluster's lock manager (docs/cluster.md). Either
// way it renews its slot's heartbeat while mounted, and a clean unmount marks it clean.
// Without -f it forks before it starts any thread and the parent exits with the mount's
// outcome once the mount is up (or failed), as mount(8) expects.
#include <fcntl.h>
#include <malloc.h>
#include <qb/qblog.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "dlm/control.h"
#include "dlm/cpg_transport.h"
#include "fs/core/filesystem.h"
#include "fs/core/heartbeat.h"
#include "fs/device/block_device.h"
#include "fs/device/device_claim.h"
#include "fs/device/fenced_device.h"
#include "fs/device/write_log_device.h"
#include "fs/metadata_log.h"
#include "fuse/cluster_lock_manager.h"
#include "fuse/daemon_log.h"
#include "fuse/kernel_invalidator.h"
#include "fuse/lowlevel.h"
#include "fuse/mount_options.h"
#include "fuse/node_recovery.h"
#include "journal/check.h"
#include "journal/journal.h"

using namespace lunfs;

namespace {

// How long a cluster mount waits to join the lock space (quorum included).
constexpr std::chrono::seconds kJoinTimeout{30};
// How long a write waits for a disk lease that ran out to come back before it fails with
// EIO (fs/device/disk_lease.h): a LUN path failover within it only stalls the VMs.
constexpr std::chrono::seconds kLeaseWaitLimit{30};

// Whether this node is still a member of the lock space: a request granted through the
// agreed stream says so, and the others recover only nodes that left it. Asked when a
// heartbeat renewal succeeded after the disk lease had run out (disk_lease.h).
bool still_a_member(dlm::LockSpace& ls) {
  dlm::LockId id = 0;
  if (ls.lock("lease-check", dlm::Mode::NL, dlm::kNoQueue, std::chrono::seconds(5), &id) != dlm::Status::kOk)
    return false;
  (void)ls.unlock(id);
  return true;
}

// The background start: fork() before any thread exists (a thread does not survive a
// fork, and the lock space and the heartbeat start theirs before the mount is up). The
// parent waits until the child says the mount is up and exits 0, or until the child exits
// without saying so and exits with its status.
class Background {
 public:
  // In the parent: never returns. In the child: returns (a new session, stdio unchanged).
  void start() {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
      std::perror("mount.lunfs: pipe");
      std::exit(32);
    }
    const pid_t pid = fork();
    if (pid < 0) {
      std::perror("mount.lunfs: fork");
      std::exit(32);
    }
    if (pid > 0) {
      close(p[1]);
      char c;
      if (read(p[0], &c, 1) == 1) _exit(0);
      int status = 0;
      if (waitpid(pid, &status, 0) == pid && WIFEXITED(status)) _exit(WEXITSTATUS(status));
      _exit(32);
    }
    close(p[0]);
    ready_fd_ = p[1];
    setsid();
  }
  // The mount is up: the parent exits 0 and this process lets go of the terminal.
  void ready() {
    if (ready_fd_ < 0) return;
    (void)!chdir("/");
    if (int null = open("/dev/null", O_RDWR); null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      if (null > 2) close(null);
    }
    (void)!write(ready_fd_, "1", 1);
    close(ready_fd_);
    ready_fd_ = -1;
  }

 private:
  int ready_fd_ = -1;
};

// The mount's control socket (dlm/control.h), root only: `lunfs status` asks it for the
// glocks this node has. A cluster mount serves it as its lock space's ("lunfs-dlm-FSNAME"),
// so that `lunfs locks FSNAME` dumps the lock table too; a nolock mount under a name of its
// device. A mount without it works on; status then says it could not ask.
std::unique_ptr<dlm::ControlServer> serve_control(const std::string& device, int fd, FileSystem& fs,
                                                  dlm::LockSpace* lockspace, const std::string& fs_name,
                                                  NodeRecovery* recovery) {
  struct stat st {};
  if (fstat(fd, &st) != 0) return nullptr;
  std::map<int32_t, std::function<std::string()>> handlers = {{dlm::kControlGlocks, [&fs] { return fs.glock_dump(); }}};
  std::string service = dlm::mount_control_service_name(st);
  if (lockspace) {
    handlers[dlm::kControlDump] = [lockspace] { return lockspace->dump(); };
    handlers[dlm::kControlStats] = [lockspace] { return lockspace->stats().to_string(); };
    handlers[dlm::kControlRecovery] = [lockspace, recovery] {
      std::string text = "members";
      for (dlm::NodeId n : lockspace->members()) text += " " + std::to_string(n);
      text += "\n";
      if (recovery) {
        for (const auto& line : recovery->describe()) text += line + "\n";
      }
      return text;
    };
    service = dlm::control_service_name(fs_name);
  }
  std::unique_ptr<dlm::ControlServer> server;
  if (dlm::Status s = dlm::start_control_service(service, std::move(handlers), &server);
      s != dlm::Status::kOk) {
    std::fprintf(stderr, "mount.lunfs: %s: no control socket %s (%s): lunfs status cannot list this mount's glocks\n",
                 device.c_str(), service.c_str(), std::string(dlm::status_name(s)).c_str());
    return nullptr;
  }
  return server;
}

}  // namespace

int main(int argc, char** argv) {
  // The daemon outlives whoever ran it, so it must not keep the descriptors it inherited:
  // one open on another file system keeps that file system busy ("umount: target is
  // busy") for as long as this mount lasts. The cluster checker found it: a test thread's
  // file on one node's mount leaked, through the shell that restarted another node, into
  // that node's daemon.
  close_range(3, ~0U, 0);
  // Keep large buffers in the heap: glibc would mmap/munmap each one, and munmap's TLB
  // shootdowns across the session threads are expensive (see fs/device/scratch_buffer.h).
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  // The lock manager's warnings (dlm/, through qb_log) go where every other message of
  // the daemon goes: stderr, which is the terminal with -f and syslog or the logfile
  // otherwise (DaemonLog).
  qb_log_init("mount.lunfs", LOG_DAEMON, LOG_INFO);
  qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, QB_FALSE);
  qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", LOG_WARNING);
  qb_log_format_set(QB_LOG_STDERR, "mount.lunfs: %b");
  qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
  std::vector<std::string> args(argv + 1, argv + argc);
  auto cmd = parse_mount_command(args);
  if (!cmd) {
    std::fprintf(stderr, "mount.lunfs: %s\n%s", cmd.status().message().c_str(), mount_usage().c_str());
    return 1;
  }
  const bool cluster = cmd->lockproto == "corosync";
  // The survivors of a dead node wait out its lease (two intervals and a second) before
  // they recover it: 3 s instead of 11 s.
  if (cluster && !cmd->heartbeat_given) cmd->heartbeat_interval = std::chrono::seconds(1);
  if (!cmd->logfile.empty()) {
    const int probe = open(cmd->logfile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (probe < 0) {
      std::fprintf(stderr, "mount.lunfs: logfile %s: %s\n", cmd->logfile.c_str(), std::strerror(errno));
      return 32;
    }
    close(probe);
  }
  Background background;
  if (!cmd->foreground) background.start();
  std::optional<DaemonLog> daemon_log;  // once in the background; goes last, after every message
  auto dev = FileBlockDevice::open(cmd->device, {cmd->read_only, true});
  if (!dev) {
    std::fprintf(stderr, "mount.lunfs: %s: %s\n", cmd->device.c_str(), dev.status().to_string().c_str());
    return 32;
  }
  if (!(*dev)->fallback_note().empty()) std::fprintf(stderr, "mount.lunfs: %s\n", (*dev)->fallback_note().c_str());
  // Every write of this mount goes through the fence: once the node may no longer write
  // (its lock space failed), nothing more reaches the LUN (fs/device/fenced_device.h).
  // With write_log=PATH, what gets past the fence is recorded (fs/device/write_log_device.h).
  std::unique_ptr<WriteLogDevice> write_log;
  if (!cmd->write_log.empty()) {
    auto recorded = WriteLogDevice::open(**dev, cmd->write_log);
    if (!recorded) {
      std::fprintf(stderr, "mount.lunfs: %s\n", recorded.status().to_string().c_str());
      return 32;
    }
    write_log = std::move(*recorded);
  }
  FencedDevice lun(write_log ? static_cast<BlockDevice&>(*write_log) : **dev);
  // A cluster mount's right to write the LUN, checked by `lun` before every write.
  std::optional<DiskLease> lease;
  // Held for the life of the daemon (the descriptor goes with the last process): no other
  // mount.lunfs, fsck.lunfs or mkfs.lunfs of this host can use the device meanwhile.
  auto claim = cluster ? DeviceClaim::take_shared(cmd->device, (*dev)->fd())
                       : DeviceClaim::take(cmd->device, (*dev)->fd(), (*dev)->is_block_device());
  if (!claim) {
    std::fprintf(stderr, "mount.lunfs: cannot mount %s (slot %u): %s%s\n", cmd->device.c_str(), cmd->slot,
                 claim.status().message().c_str(),
                 claim.err() == EBUSY ? "; a second mount of a mounted LUN would corrupt it" : "");
    return 32;
  }
  // A node is one member of the lock space: a second cluster mount of the LUN here would
  // join it under the same node id.
  if (const auto mounts = lunfs_mounts_of(cmd->device); cluster && !mounts.empty()) {
    std::fprintf(stderr, "mount.lunfs: cannot mount %s: it is mounted on this node already, on %s\n",
                 cmd->device.c_str(), mounts.front().c_str());
    return 32;
  }
  // A writable mount replays its slot's journal and logs every metadata change to it; a
  // read-only mount writes nothing (and refuses a journal that needs replay).
  auto sb = FileSystem::read_superblock(lun);
  if (!sb) {
    std::fprintf(stderr, "mount.lunfs: cannot mount %s: %s\n", cmd->device.c_str(), sb.status().to_string().c_str());
    return 32;
  }
  if (cmd->slot >= sb->geometry.journal_count) {
    std::fprintf(stderr, "mount.lunfs: slot %u does not exist (the file system has %u journals)\n", cmd->slot,
                 sb->geometry.journal_count);
    return 32;
  }
  // The cluster: declared before the lock space, which delivers to it until it is gone.
  ClusterLockManager cluster_lm;
  FileLocks file_locks;
  std::unique_ptr<dlm::LockSpace> lockspace;
  uint32_t node_id = 0;
  if (cluster) {
    auto running = corosync_cluster_name();
    if (!running) {
      std::fprintf(stderr, "mount.lunfs: cannot mount %s with lockproto=corosync: %s\n", cmd->device.c_str(),
                   running.status().message().c_str());
      return 32;
    }
    if (*running != sb->cluster_name) {
      std::fprintf(stderr, "mount.lunfs: cannot mount %s: its lock table \"%s:%s\" names cluster \"%s\", but this "
                   "node's Corosync runs cluster \"%s\" (totem.cluster_name); mount it on a node of cluster "
                   "\"%s\"\n", cmd->device.c_str(), sb->cluster_name.c_str(), sb->fs_name.c_str(),
                   sb->cluster_name.c_str(), running->c_str(), sb->cluster_name.c_str());
      return 32;
    }
    if (dlm::Status st = dlm::make_cpg_lockspace(sb->fs_name, &cluster_lm, &lockspace); st != dlm::Status::kOk) {
      std::fprintf(stderr, "mount.lunfs: cannot mount %s: lock space %s: %s\n", cmd->device.c_str(),
                   sb->fs_name.c_str(), std::string(dlm::status_name(st)).c_str());
      return 32;
    }
    cluster_lm.attach(lockspace.get());
    if (dlm::Status st = lockspace->join(kJoinTimeout); st != dlm::Status::kOk) {
      std::fprintf(stderr, "mount.lunfs: cannot mount %s: cannot join lock space %s: %s\n", cmd->device.c_str(),
                   sb->fs_name.c_str(), std::string(dlm::status_name(st)).c_str());
      return 32;
    }
    node_id = lockspace->node_id();
    auto slot = cluster_lm.claim_slot(cmd->slot_given ? std::optional<uint32_t>(cmd->slot) : std::nullopt,
                                      sb->geometry.journal_count);
    if (!slot) {
      std::fprintf(stderr, "mount.lunfs: cannot mount %s: %s\n", cmd->device.c_str(), slot.status().message().c_str());
      return 32;
    }
    cmd->slot = *slot;
  }
  // Leaving without having mounted: nobody writes the slot any more, so the next mount
  // need not wait, and another node may take it.
  std::unique_ptr<SlotHeartbeat> heartbeat;
  auto give_up = [&](int rc) {
    if (heartbeat) {
      if (auto st = heartbeat->release(); !st) std::fprintf(stderr, "mount.lunfs: %s\n", st.to_string().c_str());
    }
    if (cluster) {
      cluster_lm.stop();
      if (auto st = cluster_lm.release_slot(); !st) std::fprintf(stderr, "mount.lunfs: %s\n", st.to_string().c_str());
    }
    return rc;
  };
  // Other hosts. lockproto=nolock is a single-host mount, so a live heartbeat in any slot
  // refuses it, not only one in its own slot. A cluster mount holds its slot's lock, so a
  // live heartbeat there is a mount outside the cluster (nolock, or another cluster).
  std::vector<uint32_t> slots(sb->geometry.journal_count);
  std::iota(slots.begin(), slots.end(), 0u);
  if (cluster) slots = {cmd->slot};
  HeartbeatWatchOptions watch_options;
  watch_options.interval = cmd->heartbeat_interval;
  watch_options.watch_damaged = cmd->heartbeat_force;
  watch_options.on_watch = [&](std::chrono::milliseconds window) {
    std::fprintf(stderr, "mount.lunfs: %s: a heartbeat says the file system is mounted; watching it for %.1f s to "
                 "tell a live mount from a crashed one\n", cmd->device.c_str(), window.count() / 1000.0);
  };
  auto liveness = watch_heartbeats(lun, *sb, slots, steady_monotonic_clock(), watch_options);
  if (!liveness) {
    std::fprintf(stderr, "mount.lunfs: cannot mount %s (slot %u): %s\n", cmd->device.c_str(), cmd->slot,
                 liveness.status().to_string().c_str());
    return give_up(32);
  }
  for (const auto& s : *liveness) {
    const std::string where = s.slot == cmd->slot ? "slot " + std::to_string(s.slot) + " is in use"
                                                  : "the file system is mounted on slot " + std::to_string(s.slot);
    if (s.state == SlotLiveness::State::kLive && s.renewed) {
      std::fprintf(stderr, "mount.lunfs: cannot mount %s (slot %u): %s by %s: its heartbeat was renewed "
                   "while this mount watched it. Unmount it there first; two hosts writing one file system "
                   "corrupt it (%s)\n", cmd->device.c_str(), cmd->slot,
                   where.c_str(), describe_heartbeat_holder(s.record).c_str(),
                   cluster ? "a mount outside this cluster writes it: lockproto=nolock, or another cluster"
                           : "lockproto=nolock is a single-host mount");
      return give_up(32);
    }
    if (s.state == SlotLiveness::State::kDamaged) {
      std::fprintf(stderr, "mount.lunfs: cannot mount %s (slot %u): the heartbeat block of slot %u is damaged (%s), "
                   "so whether another host has the file system mounted cannot be told. If no host has it "
                   "mounted, mount with -o heartbeat_force: the block is then watched for %lld s and taken "
                   "over if nobody rewrites it\n", cmd->device.c_str(), cmd->slot, s.slot, s.damage.c_str(),
                   static_cast<long long>((heartbeat_lease(cmd->heartbeat_interval) + kHeartbeatMargin).count() / 1000));
      return give_up(32);
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
  if (!cmd->read_only) {
    // The heartbeat writes past the lease (to `**dev`): its renewals are what bring the lease back.
    const auto claim_started = steady_monotonic_clock().now();
    auto hb = SlotHeartbeat::claim(**dev, *sb, cmd->slot, local_heartbeat_identity(node_id),
                                   std::chrono::duration_cast<std::chrono::milliseconds>(cmd->heartbeat_interval),
                                   steady_monotonic_clock(),
                                   [](const std::string& m) { std::fprintf(stderr, "mount.lunfs: %s\n", m.c_str()); });
    if (!hb) {
      std::fprintf(stderr, "mount.lunfs: cannot mount %s: %s\n", cmd->device.c_str(), hb.status().to_string().c_str());
      return give_up(32);
    }
    heartbeat = std::move(*hb);
    if (cluster) {
      lease.emplace(steady_monotonic_clock(), heartbeat_lease(heartbeat->interval()), kLeaseWaitLimit, claim_started,
                    [](const std::string& m) { std::fprintf(stderr, "mount.lunfs: %s\n", m.c_str()); });
      lun.set_lease(&*lease);
      heartbeat->set_renewal_hook([&lease, &lockspace](std::chrono::nanoseconds started) {
        if (!lease->renewed(started) && still_a_member(*lockspace)) lease->restore(started);
      });
    }
  }
  std::unique_ptr<MetadataLog> log;
  if (cmd->read_only) {
    if (journal::check_journal(lun, *sb, cmd->slot).dirty) {
      std::fprintf(stderr, "mount.lunfs: %s: the journal of slot %u needs replay, which a read-only mount cannot "
                   "do; mount it read-write once\n", cmd->device.c_str(), cmd->slot);
      return give_up(32);
    }
    log = std::make_unique<WriteThroughLog>(lun);  // never written: the mount is read-only
  } else {
    auto journal = journal::Journal::open(lun, *sb, cmd->slot, {.commit_interval = cmd->commit_interval});
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
  NoLockManager nolock_lm;
  MountOptions mo;
  mo.read_only = cmd->read_only;
  mo.noatime = cmd->noatime;
  mo.slot = cmd->slot;
  mo.free_orphans = !cluster;
  // df on every node exact within a second (docs/cluster.md, "statfs").
  if (cluster) mo.statfs_fold_interval = std::chrono::seconds(1);
  auto fs = FileSystem::mount(lun, *log, cluster ? static_cast<LockManager&>(cluster_lm) : nolock_lm, mo);
  if (!fs) {
    std::fprintf(stderr, "mount.lunfs: cannot mount %s: %s\n", cmd->device.c_str(), fs.status().to_string().c_str());
    return give_up(32);
  }

  // A node that leaves the lock space holding locks is recovered by the lowest member
  // (fuse/node_recovery.h); this node stops writing when its own lock space fails, so that
  // the others may recover it once its heartbeat has stopped.
  std::optional<NodeRecovery> recovery;
  if (cluster) {
    auto note = [](const std::string& m) { std::fprintf(stderr, "mount.lunfs: %s\n", m.c_str()); };
    NodeRecovery::Options ro;
    ro.interval = std::chrono::duration_cast<std::chrono::milliseconds>(cmd->heartbeat_interval);
    ro.log = note;
    ro.fence.path = cmd->fence_agent;
    if (const char* stall = std::getenv("LUNFS_TEST_STALL_MID_REPLAY_SECONDS"))
      ro.stall_mid_replay = std::chrono::seconds(std::atoi(stall));
    ro.after_recovery = [&fs, note] {
      auto freed = (*fs)->free_unused_orphans();
      if (!freed) {
        note("after a recovery, freeing the files left open after their last unlink: " + freed.status().to_string());
      } else if (*freed > 0) {
        note("after a recovery: freed " + std::to_string(*freed) +
             " files that were unlinked while open and that no node uses any more");
      }
    };
    recovery.emplace(lun, *sb, *lockspace, std::move(ro));
    cluster_lm.set_recovery_hooks(
        [&](const dlm::Departure& departure, const std::vector<dlm::HeldLock>& held) {
          recovery->node_left(departure, held);
        },
        [&](const dlm::Departure& departure) { recovery->node_recovered(departure); });
    cluster_lm.set_failure_hook([&](const std::string& why) {
      lun.fence(why);
      (*fs)->withdraw(why + "; this node no longer writes the LUN, and the other nodes recover its journal");
      if (heartbeat) heartbeat->stop();
    });
  }
  // The hooks use what is declared above; they go first (clearing waits for a call in progress).
  struct ClearClusterHooks {
    ClusterLockManager& lm;
    ~ClearClusterHooks() {
      lm.set_recovery_hooks(nullptr, nullptr);
      lm.set_failure_hook(nullptr);
    }
  } clear_cluster_hooks{cluster_lm};

  // Stopped (its thread joined) before the file system goes, at the end of main.
  auto control = serve_control(cmd->device, (*dev)->fd(), **fs, lockspace.get(), sb->fs_name,
                               recovery ? &*recovery : nullptr);

  FuseContext ctx;
  ctx.fs = fs->get();
  ctx.debug = cmd->debug;
  if (cluster) file_locks.attach(lockspace.get());
  ctx.locks = &file_locks;
  if (cluster) {
    ctx.cluster = true;
    ctx.entry_timeout = 0;
  }
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
    if (auto st = (*fs)->unmount(); !st) std::fprintf(stderr, "mount.lunfs: %s\n", st.to_string().c_str());
    return give_up(32);
  }
  int rc = 32;
  std::optional<KernelInvalidator> invalidator;
  if (cluster) {
    invalidator.emplace(se, (*fs)->root());
    cluster_lm.set_release_hook([&](const GlockName& name) { invalidator->invalidate(name.number); });
    (*fs)->set_iopen_wanted_hook([&](uint64_t ino, uint64_t parent, const std::string& name) {
      invalidator->delete_name(parent, ino, name);
    });
  }
  if (fuse_set_signal_handlers(se) == 0) {
    if (fuse_session_mount(se, cmd->mountpoint.c_str()) == 0) {
      background.ready();
      if (!cmd->foreground) daemon_log.emplace(cmd->logfile);
      if (heartbeat) heartbeat->start();
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
  // The kernel has no caches of this mount left to invalidate, and the session goes.
  cluster_lm.set_release_hook(nullptr);
  (*fs)->set_iopen_wanted_hook(nullptr);
  if (invalidator) invalidator->stop();
  fuse_session_destroy(se);
  control.reset();
  if (recovery) recovery->stop();  // no sweep runs into the unmount
  Status unmounted = (*fs)->unmount();
  cluster_lm.stop();  // no demote reaches the file system after this
  if (unmounted && cluster) unmounted = cluster_lm.release_slot();
  // A fenced node's heartbeat writes bypass the fence (they go past the lease to the LUN):
  // it must not mark its slot clean while the others recover it.
  if (unmounted && lun.fenced()) unmounted = error(EIO, "this node was fenced (" + lun.why() + ")");
  if (!unmounted) {
    std::fprintf(stderr, "mount.lunfs: unmount of %s: %s\n", cmd->device.c_str(), unmounted.to_string().c_str());
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

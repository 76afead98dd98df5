// Multi-mount protection through the real tools: a second mount.lunfs of a mounted LUN is
// refused on this host (device claim) and when another host's heartbeat is live; a killed
// daemon's heartbeat is waited out and the next mount proceeds; a clean unmount needs no
// wait; fsck.lunfs and mkfs.lunfs -f refuse a file system another host has mounted. The
// "other host" is a thread of this test renewing a slot's heartbeat through its own
// descriptor of the LUN, without this host's claim, as a mount on another host would.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>

#include "fs/core/filesystem.h"
#include "fs/core/heartbeat.h"
#include "fs/device/aligned_buffer.h"
#include "fs/device/block_device.h"
#include "tests/fuse/mount_fixture.h"

namespace lunfs::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kOtherMountId = 0x0123456789abcdefULL;

class OtherHost {
 public:
  OtherHost(const std::string& lun, uint32_t slot) {
    auto dev = FileBlockDevice::open(lun);
    EXPECT_TRUE(dev) << dev.status().to_string();
    if (!dev) return;
    dev_ = std::move(*dev);
    auto sb = FileSystem::read_superblock(*dev_);
    EXPECT_TRUE(sb) << sb.status().to_string();
    if (!sb) return;
    auto hb = SlotHeartbeat::claim(*dev_, *sb, slot, {2, kOtherMountId, "other-host"}, 1000ms,
                                   steady_monotonic_clock(), [](const std::string& m) { ADD_FAILURE() << m; });
    EXPECT_TRUE(hb) << hb.status().to_string();
    if (!hb) return;
    hb_ = std::move(*hb);
    hb_->start();
  }
  ~OtherHost() {
    if (hb_) hb_->stop();
  }
  bool ok() const { return hb_ != nullptr; }
  // Stops renewing and leaves the heartbeat live, as a host that crashed.
  void crash() { hb_->stop(); }
  void unmount() { EXPECT_TRUE(hb_->release()); }

 private:
  std::unique_ptr<FileBlockDevice> dev_;
  std::unique_ptr<SlotHeartbeat> hb_;
};

class MultiMount : public LunfsMount {
 protected:
  uint64_t lun_mib() const override { return 256; }
  std::string mount_options() const override { return "lockproto=nolock,heartbeat=1"; }

  // Runs a tool; returns its exit code and leaves its output in *out.
  int tool(const std::string& cmd, std::string* out) {
    const std::string log = dir_ + "/tool.out";
    int rc = run(cmd + " > " + log + " 2>&1");
    *out = read_file(log);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }

  int second_mount(const std::string& mountpoint, const std::string& options, std::string* out) {
    mkdir(mountpoint.c_str(), 0755);
    // A mount that wrongly succeeds runs until SIGTERM unmounts it (exit 0): the test fails
    // instead of hanging.
    int rc = tool("timeout -s TERM 20 " + bin("mount.lunfs") + " " + lun_ + " " + mountpoint + " -f -o " + options,
                  out);
    if (is_mounted(mountpoint)) run("fusermount3 -u " + mountpoint);
    return rc;
  }
};

TEST_F(MultiMount, SecondMountOnThisHostIsRefusedAndTheFirstKeepsWorking) {
  ASSERT_TRUE(write_synced(path("before"), "written by the first mount"));
  const std::string second = dir_ + "/second";
  for (const char* options : {"lockproto=nolock", "lockproto=nolock,slot=1"}) {
    std::string out;
    EXPECT_EQ(second_mount(second, options, &out), 32) << options << ": " << out;
    EXPECT_NE(out.find("cannot mount " + lun_ + " (slot "), std::string::npos) << out;
    EXPECT_NE(out.find("is in use on this host by mount.lunfs (pid " + std::to_string(pid_) + ", slot 0) mounted on " +
                       mnt_),
              std::string::npos)
        << "names the device, the slot and the holder: " << out;
    EXPECT_EQ(out.find("replayed"), std::string::npos) << "the refused mount replayed the live journal: " << out;
    EXPECT_FALSE(is_mounted(second));
  }
  // The first mount is untouched: it writes and reads, and unmounts to a clean journal.
  ASSERT_TRUE(write_synced(path("after"), "written after the refusals"));
  EXPECT_EQ(read_file(path("before")), "written by the first mount");
  EXPECT_EQ(read_file(path("after")), "written after the refusals");
  unmount_fs();
  std::string out;
  EXPECT_EQ(tool(bin("fsck.lunfs") + " -n " + lun_, &out), 0) << out;
  EXPECT_NE(out.find("0 error(s), 0 warning(s)"), std::string::npos) << out;
  mount_fs(mount_options());
  EXPECT_EQ(daemon_log().find("replayed"), std::string::npos) << daemon_log();
  EXPECT_EQ(read_file(path("after")), "written after the refusals");
}

// SIGKILL leaves the heartbeat live: the next mount watches it for two intervals and a
// second, sees no renewal, and takes the slot over (replaying its journal).
TEST_F(MultiMount, KilledDaemonIsWaitedOutThenTheMountSucceeds) {
  ASSERT_TRUE(write_synced(path("acked"), "acknowledged before the kill"));
  kill_daemon();
  const auto start = Clock::now();
  mount_fs(mount_options());
  const auto took = Clock::now() - start;
  EXPECT_GE(took, 3s) << "did not wait out the heartbeat";
  EXPECT_LT(took, 20s);
  EXPECT_NE(daemon_log().find("slot 0: heartbeat of host "), std::string::npos) << daemon_log();
  EXPECT_NE(daemon_log().find("unchanged for 3.0 s: taking it as a crashed mount; taking the slot over"),
            std::string::npos)
      << daemon_log();
  EXPECT_EQ(read_file(path("acked")), "acknowledged before the kill");
}

TEST_F(MultiMount, CleanUnmountNeedsNoWait) {
  unmount_fs();
  const auto start = Clock::now();
  mount_fs(mount_options());
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_EQ(daemon_log().find("watching"), std::string::npos) << daemon_log();
}

TEST_F(MultiMount, LiveHeartbeatOfAnotherHostRefusesTheMount) {
  unmount_fs();
  {
    OtherHost other(lun_, 0);
    ASSERT_TRUE(other.ok());
    std::string out;
    EXPECT_EQ(second_mount(mnt_, "lockproto=nolock,heartbeat=1", &out), 32) << out;
    EXPECT_NE(out.find("cannot mount " + lun_ + " (slot 0): slot 0 is in use by host other-host (node 2, pid " +
                       std::to_string(getpid()) + ", mount id 0123456789abcdef): its heartbeat was renewed while "
                       "this mount watched it"),
              std::string::npos)
        << out;
    EXPECT_FALSE(is_mounted(mnt_));
    other.unmount();
  }
  mount_fs(mount_options());
  EXPECT_EQ(daemon_log().find("watching"), std::string::npos) << "a cleanly unmounted slot needs no wait";
}

// lockproto=nolock is a single-host mount: a live heartbeat in any slot refuses it.
TEST_F(MultiMount, LiveHeartbeatInAnotherSlotRefusesANolockMount) {
  unmount_fs();
  {
    OtherHost other(lun_, 1);
    ASSERT_TRUE(other.ok());
    std::string out;
    EXPECT_EQ(second_mount(mnt_, "lockproto=nolock,heartbeat=1", &out), 32) << out;
    EXPECT_NE(out.find("cannot mount " + lun_ + " (slot 0): the file system is mounted on slot 1 by host other-host"),
              std::string::npos)
        << out;
    other.unmount();
  }
  mount_fs(mount_options());
}

// A heartbeat block that does not verify (here one flipped bit; a torn write after a power
// loss looks the same) cannot tell whether another host renews it: refused in words, and
// taken over with heartbeat_force once it has been watched unchanged.
TEST_F(MultiMount, DamagedHeartbeatIsRefusedUnlessForced) {
  ASSERT_TRUE(write_synced(path("kept"), "still here"));
  unmount_fs();
  {
    auto dev = FileBlockDevice::open(lun_);
    ASSERT_TRUE(dev) << dev.status().to_string();
    auto sb = FileSystem::read_superblock(**dev);
    ASSERT_TRUE(sb) << sb.status().to_string();
    AlignedBuffer block(sb->geometry.block_size);
    const uint64_t offset = sb->geometry.heartbeat(0) * sb->geometry.block_size;
    ASSERT_TRUE((*dev)->read(offset, block.span()));
    block.data()[48] ^= std::byte{0x01};  // the counter
    ASSERT_TRUE((*dev)->write(offset, block.span()));
    ASSERT_TRUE((*dev)->flush());
  }
  std::string out;
  EXPECT_EQ(second_mount(mnt_, "lockproto=nolock,heartbeat=1", &out), 32) << out;
  EXPECT_NE(out.find("cannot mount " + lun_ + " (slot 0): the heartbeat block of slot 0 is damaged"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("checksum"), std::string::npos) << out;
  EXPECT_NE(out.find("mount with -o heartbeat_force"), std::string::npos) << out;
  EXPECT_FALSE(is_mounted(mnt_));

  mount_fs("lockproto=nolock,heartbeat=1,heartbeat_force");
  EXPECT_NE(daemon_log().find("slot 0: heartbeat (damaged) unchanged for 3.0 s"), std::string::npos) << daemon_log();
  EXPECT_EQ(read_file(path("kept")), "still here");
  // The fixture's unmount marks the rewritten heartbeat clean, and its fsck finds no error.
}

TEST_F(MultiMount, FsckRefusesALiveHeartbeatUnlessToldOtherwise) {
  unmount_fs();
  OtherHost other(lun_, 1);
  ASSERT_TRUE(other.ok());
  std::string out;
  EXPECT_EQ(tool(bin("fsck.lunfs") + " -n " + lun_, &out), 8) << out;
  EXPECT_NE(out.find("slot 1 is mounted by host other-host"), std::string::npos) << out;
  EXPECT_NE(out.find("--ignore-heartbeat"), std::string::npos) << out;
  EXPECT_EQ(tool(bin("fsck.lunfs") + " -n --ignore-heartbeat " + lun_, &out), 0) << out;
  EXPECT_NE(out.find("warning: slot 1: heartbeat says node 2 has the file system mounted"), std::string::npos)
      << out;
  other.unmount();
}

// mkfs.lunfs -f never formats a mounted lunfs: not one mounted on this host, nor one whose
// heartbeat another host renews; a stale heartbeat (a crashed host) does not stop -f.
TEST_F(MultiMount, MkfsRefusesAMountedFileSystemEvenWithForce) {
  const std::string mkfs = bin("mkfs.lunfs") + " -q -f -t test:fs -j 2 " + lun_;
  std::string out;
  EXPECT_EQ(tool(mkfs, &out), 1) << out;
  EXPECT_NE(out.find("is in use on this host by mount.lunfs"), std::string::npos) << out;
  EXPECT_NE(out.find("-f does not override this"), std::string::npos) << out;
  ASSERT_TRUE(write_synced(path("kept"), "still here"));
  unmount_fs();

  OtherHost other(lun_, 0);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(tool(mkfs, &out), 1) << out;
  EXPECT_NE(out.find("holds a lunfs mounted on slot 0 by host other-host"), std::string::npos) << out;
  EXPECT_NE(out.find("-f does not override this"), std::string::npos) << out;
  other.crash();
  mount_fs(mount_options());  // waits out the crashed host's heartbeat
  EXPECT_EQ(read_file(path("kept")), "still here") << "the refused mkfs formatted it";
  kill_daemon();  // and crashes too: a stale heartbeat again
  EXPECT_EQ(tool(mkfs, &out), 0) << out;
  EXPECT_NE(out.find("watching it for 3"), std::string::npos) << out;
}

}  // namespace
}  // namespace lunfs::testing

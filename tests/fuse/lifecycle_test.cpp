// How an admin starts and stops a mount: SIGTERM and SIGINT unmount cleanly (the journal
// is left empty, so even a read-only mount — which cannot replay — accepts the file system
// afterwards), and `mount -t lunfs` and /etc/fstab find the mount.lunfs helper, also as
// `cmake --install` installs it. The helper tests run in a private mount namespace whose
// /usr/sbin (= /sbin on Debian), /etc/fstab and install prefix are replaced, so the host's
// are never touched.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "tests/fuse/mount_fixture.h"

namespace lunfs::testing {
namespace {

class Lifecycle : public LunfsMount, public ::testing::WithParamInterface<int> {};

TEST_P(Lifecycle, SignalUnmountsCleanlyAndKeepsUnsyncedWork) {
  const int sig = GetParam();
  // Written without fsync: only the clean unmount the signal starts makes it durable.
  ASSERT_TRUE(write_file(path("unsynced"), std::string(300000, 'u')));
  ASSERT_EQ(mkdir(path("dir").c_str(), 0755), 0);
  ASSERT_GT(pid_, 0);
  ASSERT_EQ(kill(pid_, sig), 0);
  int status = 0;
  bool exited = false;
  for (int i = 0; i < 400 && !exited; ++i) {
    exited = waitpid(pid_, &status, WNOHANG) == pid_;
    if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_TRUE(exited) << "mount.lunfs did not exit within 10 s of signal " << sig;
  pid_ = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "exit status " << status << ": " << daemon_log();
  EXPECT_FALSE(is_mounted(mnt_));
  // A read-only mount refuses a journal that needs replay: it mounting proves the
  // signal's unmount checkpointed everything.
  mount_fs("lockproto=nolock,ro");
  EXPECT_EQ(read_file(path("unsynced")), std::string(300000, 'u'));
  struct stat st {};
  EXPECT_EQ(stat(path("dir").c_str(), &st), 0);
}

INSTANTIATE_TEST_SUITE_P(Signals, Lifecycle, ::testing::Values(SIGTERM, SIGINT),
                         [](const auto& info) { return std::string(info.param == SIGTERM ? "SIGTERM" : "SIGINT"); });

// The file system is unmounted by the fixture first; each test runs a shell script in a
// private mount namespace where /usr/sbin holds only mount.lunfs.
class MountHelper : public LunfsMount {
 protected:
  void SetUp() override {
    LunfsMount::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(write_file(path("before"), "written through mount.lunfs"));
    unmount_fs();
  }

  // Runs `body` (sh) inside the namespace with $LUN and $MNT set; returns its output.
  std::string in_namespace(const std::string& body, int* rc) {
    const std::string script = dir_ + "/helper.sh";
    std::ofstream(script) << "set -eu\n"
                          << "LUN='" << lun_ << "' MNT='" << mnt_ << "'\n"
                          << "mount --make-rprivate /\n"
                          << "mount -t tmpfs lunfs-test-sbin /usr/sbin\n"
                          << "ln -s '" << bin("mount.lunfs") << "' /usr/sbin/mount.lunfs\n"
                          << body << "\n";
    const std::string out = dir_ + "/helper.out";
    *rc = run("unshare -m sh " + script + " > " + out + " 2>&1");
    // The daemon mount(8) started outlives the namespace's shell only until its unmount;
    // wait for it so the fixture's fsck sees a closed device.
    // ("[m]ount" so that the pattern does not match this shell's own command line.)
    const std::string daemon = "'[m]ount.lunfs " + lun_ + "'";
    run("for i in $(seq 200); do pgrep -f " + daemon + " >/dev/null || exit 0; sleep 0.05; done; pkill -KILL -f " +
        daemon);
    return read_file(out);
  }
};

TEST_F(MountHelper, MountTypeLunfsRunsTheHelper) {
  int rc = 0;
  std::string out = in_namespace(
      "mount -t lunfs \"$LUN\" \"$MNT\" -o lockproto=nolock\n"
      "grep -q \" $MNT fuse.lunfs \" /proc/self/mounts\n"
      "cat \"$MNT/before\"; echo\n"
      "echo 'via mount -t' > \"$MNT/after\"\n"
      "umount \"$MNT\"\n",
      &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("written through mount.lunfs"), std::string::npos) << out;
  mount_fs(mount_options());
  EXPECT_EQ(read_file(path("after")), "via mount -t\n");
}

// The daemon outlives the shell that mounted, so it must not keep that shell's descriptors:
// one open on another file system would keep it busy for as long as the lunfs mount lasts
// (the cluster checker hit it: a node's mount stayed busy through another node's daemon).
TEST_F(MountHelper, TheDaemonKeepsNoDescriptorItInherited) {
  int rc = 0;
  std::string out = in_namespace(
      "mkdir -p \"$MNT.other\"\n"
      "mount -t tmpfs lunfs-test-other \"$MNT.other\"\n"
      "exec 7>\"$MNT.other/held-by-the-shell\"\n"
      "mount -t lunfs \"$LUN\" \"$MNT\" -o lockproto=nolock\n"
      "exec 7>&-\n"
      "if umount \"$MNT.other\"; then echo other-unmounted; else umount -l \"$MNT.other\"; fi\n"
      "umount \"$MNT\"\n",
      &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("other-unmounted"), std::string::npos)
      << "the lunfs daemon kept the mounting shell's file open:\n" << out;
}

TEST_F(MountHelper, FstabEntryMountsByMountPoint) {
  int rc = 0;
  std::string out = in_namespace(
      "echo \"$LUN $MNT lunfs lockproto=nolock,noatime 0 0\" > \"$MNT.fstab\"\n"
      "mount --bind \"$MNT.fstab\" /etc/fstab\n"
      "mount \"$MNT\"\n"
      "grep \" $MNT fuse.lunfs \" /proc/self/mounts\n"
      "echo 'via fstab' > \"$MNT/after\"\n"
      "umount \"$MNT\"\n",
      &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("noatime"), std::string::npos) << "the fstab options reach the mount:\n" << out;
  mount_fs(mount_options());
  EXPECT_EQ(read_file(path("after")), "via fstab\n");
  EXPECT_EQ(read_file(path("before")), "written through mount.lunfs");
}

// What an admin does: `cmake --install build` to the configured prefix, then `mount -t lunfs`
// finds the helper through the link the install made in /sbin. The prefix is a tmpfs too.
TEST_F(MountHelper, MountTypeLunfsWorksAfterCmakeInstall) {
  const std::string prefix = LUNFS_INSTALL_PREFIX;
  int rc = 0;
  std::string out = in_namespace(
      "rm /usr/sbin/mount.lunfs\n"
      "case '" + prefix + "' in /|/usr) ;; *) mount -t tmpfs lunfs-test-prefix '" + prefix + "' ;; esac\n"
      "'" LUNFS_CMAKE "' --install '" LUNFS_BUILD_DIR "' >/dev/null\n"
      "echo \"link: $(readlink /sbin/mount.lunfs)\"\n"
      "mount -t lunfs \"$LUN\" \"$MNT\" -o lockproto=nolock\n"
      "cat \"$MNT/before\"; echo\n"
      "umount \"$MNT\"\n",
      &rc);
  EXPECT_EQ(rc, 0) << out;
  if (prefix != "/usr" && prefix != "/") {  // there mount.lunfs itself is in /sbin: no link
    EXPECT_NE(out.find("link: " + prefix + "/sbin/mount.lunfs\n"), std::string::npos) << out;
  }
  EXPECT_NE(out.find("written through mount.lunfs"), std::string::npos) << out;
}

}  // namespace
}  // namespace lunfs::testing

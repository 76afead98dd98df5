// fcntl (POSIX, OFD) and flock locks through a single-host mount, probed from several
// processes with Python's fcntl module (tests/fuse/lock_scenarios.py): conflicts and
// F_GETLK, range splits, release at any close, upgrades, a killed holder, F_SETLKW waits
// and their interruption by a signal, EDEADLK, OFD locks of a description (QEMU's image
// locks: a failed attempt through a closed description leaves nothing), flock per
// description. Every outcome is compared with the same scenarios on the host's ext4.
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "tests/fuse/mount_fixture.h"

namespace lunfs::testing {
namespace {

// Runs the scenarios on `dir`; their output, or the failure.
std::string scenarios(const std::string& dir) {
  const std::string cmd =
      "timeout 120 python3 " + std::string(LUNFS_SOURCE_DIR) + "/tests/fuse/lock_scenarios.py " + dir + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "<popen failed>";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) out += "<exit status " + std::to_string(status) + ">";
  return out;
}

using Locks = LunfsMount;

TEST_F(Locks, EveryLockTypeBehavesAsOnExt4) {
  char tmpl[] = "/var/tmp/lunfs-locks-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string reference = scenarios(tmpl);
  run(std::string("rm -rf ") + tmpl);
  ASSERT_NE(reference.find("flock-unlocked ok"), std::string::npos) << "the scenarios did not run to the end on ext4:\n"
                                                                     << reference;
  EXPECT_EQ(scenarios(path("")), reference);
}

}  // namespace
}  // namespace lunfs::testing

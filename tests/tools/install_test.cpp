// `cmake --install` of the build: the four tools (mkfs.lunfs, fsck.lunfs, mount.lunfs and
// the `lunfs` admin command) land in sbin under the prefix with their man pages in
// share/man/man8, and the link that lets `mount -t lunfs` and /etc/fstab find mount.lunfs
// is made where mount(8) looks (/sbin), but never outside a --prefix of a relocated install
// (fuse/install_mount_helper.cmake).
// MountHelper in tests/fuse/lifecycle_test.cpp shows mount(8) follows such a link.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/temp_file.h"

namespace lunfs {
namespace {

namespace fs = std::filesystem;
using testing::run_command;

const std::string kInstall = std::string(LUNFS_CMAKE) + " --install " + LUNFS_BUILD_DIR;
constexpr const char* kTools[] = {"mkfs.lunfs", "fsck.lunfs", "mount.lunfs", "lunfs"};

// A fresh directory, removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/var/tmp/lunfs-install-XXXXXX";
    if (mkdtemp(tmpl)) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The paths `cmake --install` reports having written ("-- Installing: P" and "-- Up-to-date:
// P"; a link as "P -> TARGET").
std::vector<std::string> written(const std::string& out) {
  std::vector<std::string> paths;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    for (const std::string tag : {"-- Installing: ", "-- Up-to-date: "})
      if (line.rfind(tag, 0) == 0) paths.push_back(line.substr(tag.size(), line.find(" -> ") - tag.size()));
  }
  return paths;
}

TEST(Install, PrefixGetsEveryToolInSbinItsManPageAndNothingOutsideIt) {
  TempDir prefix;
  ASSERT_FALSE(prefix.path().empty());
  std::string out;
  ASSERT_EQ(run_command(kInstall + " --prefix " + prefix.path(), &out), 0) << out;
  for (const char* tool : kTools) {
    const std::string p = prefix.path() + "/sbin/" + tool;
    EXPECT_TRUE(fs::is_regular_file(p)) << p << " missing:\n" << out;
    EXPECT_EQ(access(p.c_str(), X_OK), 0) << p;
    const std::string page = prefix.path() + "/share/man/man8/" + tool + ".8";
    EXPECT_TRUE(fs::is_regular_file(page)) << page << " missing:\n" << out;
    EXPECT_EQ(run_command("man -w -M " + prefix.path() + "/share/man 8 " + tool), 0) << "man finds " << tool;
  }
  const auto paths = written(out);
  EXPECT_EQ(paths.size(), 2 * std::size(kTools)) << out;
  for (const auto& p : paths) EXPECT_EQ(p.rfind(prefix.path() + "/", 0), 0u) << p << " is outside the prefix";
  EXPECT_NE(out.find("mount -t lunfs needs that link"), std::string::npos)
      << "the install says what it left out:\n" << out;
  // The installed admin command is the real one.
  EXPECT_EQ(run_command(prefix.path() + "/sbin/lunfs", &out), 2);
  EXPECT_NE(out.find("usage: lunfs locks"), std::string::npos) << out;
}

TEST(Install, StagedInstallLinksTheMountHelperWhereMountLooks) {
  TempDir stage;
  ASSERT_FALSE(stage.path().empty());
  std::string out;
  ASSERT_EQ(run_command("DESTDIR=" + stage.path() + " " + kInstall + " --prefix /usr/local", &out), 0) << out;
  for (const char* tool : kTools)
    EXPECT_TRUE(fs::is_regular_file(stage.path() + "/usr/local/sbin/" + tool)) << tool << " missing:\n" << out;
  const std::string link = stage.path() + "/sbin/mount.lunfs";
  ASSERT_TRUE(fs::is_symlink(link)) << out;
  EXPECT_EQ(fs::read_symlink(link), "/usr/local/sbin/mount.lunfs");
  for (const auto& p : written(out)) EXPECT_EQ(p.rfind(stage.path() + "/", 0), 0u) << p << " is outside DESTDIR";
}

// With prefix /usr on a merged-/usr system (/sbin -> usr/sbin, as Debian 12), mount.lunfs is
// installed where mount(8) looks already; a link there would replace it by a link to itself.
TEST(Install, NoLinkWhereTheHelperIsInstalledAlready) {
  std::error_code ec;
  const bool merged = fs::equivalent("/sbin", "/usr/sbin", ec);
  TempDir stage;
  ASSERT_FALSE(stage.path().empty());
  std::string out;
  ASSERT_EQ(run_command("DESTDIR=" + stage.path() + " " + kInstall + " --prefix /usr", &out), 0) << out;
  EXPECT_TRUE(fs::is_regular_file(stage.path() + "/usr/sbin/mount.lunfs")) << out;
  EXPECT_EQ(fs::is_symlink(stage.path() + "/sbin/mount.lunfs"), !merged) << "merged /usr: " << merged << "\n" << out;
}

}  // namespace
}  // namespace lunfs

// Damaged metadata seen through the mount, the way ext4 and XFS show it: a directory
// lists every name its readable blocks hold, the object behind a damaged block fails with
// EIO (stat and open for an inode, read for an extent node, getxattr for an xattr block,
// the end of the listing for a directory leaf), the daemon's log names the block and,
// for an inode, the directory and name that lead to it, and the daemon keeps serving.
// Each test writes through the mount, unmounts, damages blocks of one object in the LUN
// file (found by type and owner in their headers) and mounts again.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "fs/format/ondisk.h"
#include "tests/fuse/mount_fixture.h"

namespace lunfs::testing {
namespace {

struct Listing {
  std::set<std::string> names;
  int error = 0;  // errno of the readdir that ended the listing; 0 at a clean end
};

Listing list_dir(const std::string& dir) {
  Listing l;
  DIR* d = opendir(dir.c_str());
  if (!d) {
    l.error = errno;
    return l;
  }
  for (;;) {
    errno = 0;
    dirent* e = readdir(d);
    if (!e) {
      l.error = errno;
      break;
    }
    std::string n = e->d_name;
    if (n != "." && n != "..") l.names.insert(n);
  }
  closedir(d);
  return l;
}

int stat_errno(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 ? 0 : errno;
}

class DamagedMetadata : public LunfsMount {
 protected:
  uint64_t lun_mib() const override { return 256; }

  void SetUp() override {
    LunfsMount::SetUp();
    check_fsck_ = false;  // the damage is what fsck would report
  }

  uint64_t ino_of(const std::string& rel) {
    struct stat st {};
    EXPECT_EQ(stat(path(rel).c_str(), &st), 0) << rel << ": " << strerror(errno);
    bs_ = st.st_blksize;
    return st.st_ino;
  }

  // The LUN's blocks of `type` owned by inode `owner` (home copies only: a journal copy
  // names another block than the one it sits in).
  std::vector<uint64_t> blocks_of(ondisk::BlockType type, uint64_t owner) {
    std::vector<uint64_t> out;
    int fd = open(lun_.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0);
    std::vector<std::byte> chunk(1 << 20);
    for (uint64_t off = 0;; off += chunk.size()) {
      ssize_t n = pread(fd, chunk.data(), chunk.size(), static_cast<off_t>(off));
      if (n <= 0) break;
      for (size_t b = 0; b + bs_ <= static_cast<size_t>(n); b += bs_) {
        auto block = std::span<const std::byte>(chunk).subspan(b, bs_);
        if (ondisk::get<uint32_t>(block, 0) == ondisk::kMagic &&
            ondisk::get<uint16_t>(block, 4) == static_cast<uint16_t>(type) &&
            ondisk::get<uint64_t>(block, 8) == (off + b) / bs_ && ondisk::get<uint64_t>(block, 32) == owner) {
          out.push_back((off + b) / bs_);
        }
      }
    }
    close(fd);
    return out;
  }

  // Overwrites 64 bytes of the block's body: its checksum no longer matches.
  void damage(uint64_t blocknr) {
    int fd = open(lun_.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    char junk[64];
    for (int i = 0; i < 64; ++i) junk[i] = static_cast<char>(0xA5 ^ i);
    ASSERT_EQ(pwrite(fd, junk, sizeof junk, static_cast<off_t>(blocknr * bs_ + 272)), 64);
    ASSERT_EQ(fsync(fd), 0);
    close(fd);
  }

  void remount() {
    unmount_fs();
    mount_fs(mount_options());
  }

  uint64_t bs_ = 4096;
};

TEST_F(DamagedMetadata, DamagedInodeIsListedAndGivesEio) {
  ASSERT_EQ(mkdir(path("d").c_str(), 0755), 0);
  std::set<std::string> names;
  for (int i = 0; i < 65; ++i) {
    std::string n = i == 17 ? "victim" : "file-" + std::to_string(i);
    ASSERT_TRUE(write_file(path("d/" + n), "content of " + n));
    names.insert(n);
  }
  const uint64_t victim = ino_of("d/victim");
  const uint64_t dir = ino_of("d");
  unmount_fs();
  ASSERT_NO_FATAL_FAILURE(damage(victim));
  mount_fs(mount_options());

  for (int pass = 0; pass < 2; ++pass) {  // the second from the kernel's caches
    Listing l = list_dir(path("d"));
    EXPECT_EQ(l.error, 0);
    EXPECT_EQ(l.names, names) << "pass " << pass;
  }
  EXPECT_EQ(stat_errno(path("d/victim")), EIO);
  EXPECT_EQ(open(path("d/victim").c_str(), O_RDONLY), -1);
  EXPECT_EQ(errno, EIO);
  EXPECT_EQ(read_file(path("d/file-3")), "content of file-3");
  // What a user runs: every name printed, the damaged one reported.
  ASSERT_EQ(run("ls " + path("d") + " > " + dir_ + "/ls.out 2>&1"), 0);
  EXPECT_EQ(run("grep -qx victim " + dir_ + "/ls.out"), 0);
  EXPECT_NE(run("ls -l " + path("d") + " > " + dir_ + "/ls-l.out 2>&1"), 0);
  EXPECT_EQ(run("grep -q 'victim.*Input/output error' " + dir_ + "/ls-l.out"), 0);
  EXPECT_EQ(run("grep -c '^-rw' " + dir_ + "/ls-l.out | grep -qx 64"), 0);

  const std::string log = daemon_log();
  EXPECT_NE(log.find("'victim' of directory " + std::to_string(dir)), std::string::npos) << log;
  EXPECT_NE(log.find("block " + std::to_string(victim)), std::string::npos) << log;
}

TEST_F(DamagedMetadata, DamagedExtentNodeFailsReadsNotTheListing) {
  // Every other block written: hundreds of extents, more than the inode's root holds.
  int fd = open(path("frag").c_str(), O_WRONLY | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  std::string block(4096, 'f');
  for (int k = 0; k < 600; ++k) ASSERT_EQ(pwrite(fd, block.data(), block.size(), off_t{k} * 8192), 4096);
  close(fd);
  ASSERT_TRUE(write_file(path("plain"), "plain"));
  const uint64_t ino = ino_of("frag");
  unmount_fs();
  auto nodes = blocks_of(ondisk::BlockType::kExtentNode, ino);
  ASSERT_FALSE(nodes.empty()) << "the file has no extent node block to damage";
  for (uint64_t b : nodes) ASSERT_NO_FATAL_FAILURE(damage(b));
  mount_fs(mount_options());

  EXPECT_EQ(list_dir(mnt_).names, (std::set<std::string>{"frag", "plain"}));
  struct stat st {};
  ASSERT_EQ(stat(path("frag").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 599 * 8192 + 4096);
  fd = open(path("frag").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::vector<char> buf(st.st_size);
  EXPECT_EQ(pread(fd, buf.data(), buf.size(), 0), -1);
  EXPECT_EQ(errno, EIO);
  close(fd);
  EXPECT_NE(run("cat " + path("frag") + " > /dev/null 2>&1"), 0);
  EXPECT_EQ(read_file(path("plain")), "plain");
  const std::string log = daemon_log();
  EXPECT_NE(log.find("block " + std::to_string(nodes.front())), std::string::npos) << log;
}

TEST_F(DamagedMetadata, DamagedXattrBlockFailsGetxattrNotTheListing) {
  ASSERT_TRUE(write_file(path("tagged"), "tagged data"));
  std::string value(3000, 'x');  // too big for the inode: an xattr block
  ASSERT_EQ(setxattr(path("tagged").c_str(), "user.long", value.data(), value.size(), 0), 0);
  const uint64_t ino = ino_of("tagged");
  unmount_fs();
  auto blocks = blocks_of(ondisk::BlockType::kXattr, ino);
  ASSERT_EQ(blocks.size(), 1u);
  ASSERT_NO_FATAL_FAILURE(damage(blocks[0]));
  mount_fs(mount_options());

  EXPECT_EQ(list_dir(mnt_).names, (std::set<std::string>{"tagged"}));
  EXPECT_EQ(stat_errno(path("tagged")), 0);
  char buf[4096];
  EXPECT_EQ(getxattr(path("tagged").c_str(), "user.long", buf, sizeof buf), -1);
  EXPECT_EQ(errno, EIO);
  EXPECT_NE(run("getfattr -d " + path("tagged") + " > /dev/null 2>&1"), 0);
  EXPECT_EQ(read_file(path("tagged")), "tagged data");
  EXPECT_EQ(run("ls " + mnt_ + " | grep -qx tagged"), 0);
  const std::string log = daemon_log();
  EXPECT_NE(log.find("block " + std::to_string(blocks[0])), std::string::npos) << log;
}

TEST_F(DamagedMetadata, DamagedDirectoryLeafListsTheOtherLeavesThenEio) {
  ASSERT_EQ(mkdir(path("big").c_str(), 0755), 0);
  std::set<std::string> names;
  for (int i = 0; i < 400; ++i) {
    std::string n = "entry-" + std::to_string(i) + "-" + std::string(30, 'n');
    ASSERT_TRUE(write_file(path("big/" + n), ""));
    names.insert(n);
  }
  const uint64_t dir = ino_of("big");
  unmount_fs();
  auto leaves = blocks_of(ondisk::BlockType::kDirLeaf, dir);
  ASSERT_GE(leaves.size(), 4u) << "the directory should be hashed over several leaves";
  ASSERT_NO_FATAL_FAILURE(damage(leaves[leaves.size() / 2]));
  mount_fs(mount_options());

  for (int pass = 0; pass < 2; ++pass) {
    Listing l = list_dir(path("big"));
    EXPECT_EQ(l.error, EIO) << "pass " << pass << ": the listing must not end as if complete";
    // Names in the readable leaves are listed and usable; the damaged leaf's are EIO.
    size_t unlisted = 0;
    for (const std::string& n : names) {
      if (l.names.count(n)) {
        EXPECT_EQ(stat_errno(path("big/" + n)), 0) << n;
      } else {
        ++unlisted;
        EXPECT_EQ(stat_errno(path("big/" + n)), EIO) << n;
      }
    }
    for (const std::string& n : l.names) EXPECT_TRUE(names.count(n)) << "listed a name never created: " << n;
    EXPECT_GT(unlisted, 0u);
    EXPECT_LT(unlisted, names.size() / leaves.size() * 2) << "more than the damaged leaf went missing";
  }
  // ls prints what it could read and fails.
  EXPECT_NE(run("ls " + path("big") + " > " + dir_ + "/ls.out 2>&1"), 0);
  EXPECT_EQ(run("grep -q 'Input/output error' " + dir_ + "/ls.out"), 0);
  EXPECT_EQ(run("grep -c '^entry-' " + dir_ + "/ls.out | grep -qvx 0"), 0);
  // The rest of the file system is untouched.
  ASSERT_TRUE(write_file(path("after"), "still writable"));
  EXPECT_EQ(read_file(path("after")), "still writable");
  const std::string log = daemon_log();
  EXPECT_NE(log.find("block " + std::to_string(leaves[leaves.size() / 2])), std::string::npos) << log;
}

}  // namespace
}  // namespace lunfs::testing

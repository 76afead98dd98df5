// POSIX semantics through a real lunfs mount: every syscall family the core serves, with
// success and error cases, as root and as an unprivileged user. fsck.lunfs -n must be
// clean after each test's unmount (mount_fixture.h).
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <grp.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "fs/device/aligned_buffer.h"
#include "tests/fuse/mount_fixture.h"

namespace lunfs::testing {
namespace {

using Posix = LunfsMount;

int errno_of(int rc) { return rc < 0 ? errno : 0; }

TEST_F(Posix, CreateReadWriteAndErrors) {
  ASSERT_TRUE(write_file(path("a"), "hello world"));
  EXPECT_EQ(read_file(path("a")), "hello world");
  EXPECT_EQ(open(path("a").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644), -1);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(open(path("missing").c_str(), O_RDONLY), -1);
  EXPECT_EQ(errno, ENOENT);
  std::string n255(255, 'n'), n256(256, 'n');
  ASSERT_TRUE(write_file(path(n255), "x"));
  EXPECT_EQ(open(path(n256).c_str(), O_CREAT | O_WRONLY, 0644), -1);
  EXPECT_EQ(errno, ENAMETOOLONG);
  EXPECT_EQ(mkdir(path(n256).c_str(), 0755), -1);
  EXPECT_EQ(errno, ENAMETOOLONG);
  EXPECT_EQ(open(path("a/b").c_str(), O_CREAT | O_WRONLY, 0644), -1);
  EXPECT_EQ(errno, ENOTDIR);
  EXPECT_EQ(unlink(path("missing").c_str()), -1);
  EXPECT_EQ(errno, ENOENT);
  // Append and partial overwrite.
  ASSERT_TRUE(write_file(path("a"), "!!", O_WRONLY | O_APPEND));
  EXPECT_EQ(read_file(path("a")), "hello world!!");
  int fd = open(path("a").c_str(), O_RDWR);
  ASSERT_EQ(pwrite(fd, "J", 1, 0), 1);
  char c;
  ASSERT_EQ(pread(fd, &c, 1, 0), 1);
  EXPECT_EQ(c, 'J');
  EXPECT_EQ(pread(fd, &c, 1, 1000), 0);  // past EOF
  close(fd);
}

TEST_F(Posix, LargeSparseAndDirectIo) {
  int fd = open(path("img").c_str(), O_RDWR | O_CREAT | O_DIRECT, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  AlignedBuffer buf(1 << 20);
  std::memset(buf.data(), 0x5a, buf.size());
  ASSERT_EQ(pwrite(fd, buf.data(), buf.size(), 100 << 20), 1 << 20);
  AlignedBuffer back(1 << 20);
  ASSERT_EQ(pread(fd, back.data(), back.size(), 100 << 20), 1 << 20);
  EXPECT_EQ(std::memcmp(buf.data(), back.data(), buf.size()), 0);
  ASSERT_EQ(pread(fd, back.data(), 4096, 0), 4096);
  EXPECT_EQ(back.data()[0], std::byte{0});
  close(fd);
  struct stat st;
  ASSERT_EQ(stat(path("img").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 101 << 20);
  EXPECT_LT(st.st_blocks * 512, 2 << 20);  // sparse
  // A 16 TiB sparse file.
  fd = open(path("huge").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_EQ(ftruncate(fd, off_t{16} << 40), 0);
  ASSERT_EQ(pwrite(fd, "end", 3, (off_t{16} << 40) - 3), 3);
  char e[3];
  ASSERT_EQ(pread(fd, e, 3, (off_t{16} << 40) - 3), 3);
  EXPECT_EQ(std::string(e, 3), "end");
  close(fd);
}

TEST_F(Posix, DirectoriesLinksSymlinksNodes) {
  ASSERT_EQ(mkdir(path("d").c_str(), 0755), 0);
  EXPECT_EQ(mkdir(path("d").c_str(), 0755), -1);
  EXPECT_EQ(errno, EEXIST);
  ASSERT_TRUE(write_file(path("d/f"), "x"));
  EXPECT_EQ(rmdir(path("d").c_str()), -1);
  EXPECT_EQ(errno, ENOTEMPTY);
  EXPECT_EQ(rmdir(path("d/f").c_str()), -1);
  EXPECT_EQ(errno, ENOTDIR);
  EXPECT_EQ(unlink(path("d").c_str()), -1);
  EXPECT_EQ(errno, EISDIR);
  ASSERT_EQ(link(path("d/f").c_str(), path("g").c_str()), 0);
  struct stat st;
  ASSERT_EQ(stat(path("g").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);
  EXPECT_EQ(link(path("d").c_str(), path("dl").c_str()), -1);
  EXPECT_EQ(errno, EPERM);
  ASSERT_EQ(symlink("d/f", path("s").c_str()), 0);
  char buf[64] = {};
  ASSERT_EQ(readlink(path("s").c_str(), buf, sizeof buf), 3);
  EXPECT_STREQ(buf, "d/f");
  EXPECT_EQ(read_file(path("s")), "x");
  ASSERT_EQ(mkfifo(path("fifo").c_str(), 0600), 0);
  ASSERT_EQ(mknod(path("null").c_str(), S_IFCHR | 0600, makedev(1, 3)), 0);
  ASSERT_EQ(stat(path("null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  ASSERT_EQ(stat(path("d").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);
  ASSERT_EQ(mkdir(path("d/sub").c_str(), 0755), 0);
  ASSERT_EQ(stat(path("d").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 3u);
}

TEST_F(Posix, BigDirectoryReaddir) {
  ASSERT_EQ(mkdir(path("big").c_str(), 0755), 0);
  const int n = 5000;
  for (int i = 0; i < n; ++i) ASSERT_TRUE(write_file(path("big/entry-" + std::to_string(i)), ""));
  DIR* d = opendir(path("big").c_str());
  ASSERT_NE(d, nullptr);
  std::set<std::string> names;
  while (dirent* e = readdir(d)) names.insert(e->d_name);
  closedir(d);
  EXPECT_EQ(names.size(), size_t(n + 2));
  for (int i = 0; i < n; i += 2) ASSERT_EQ(unlink(path("big/entry-" + std::to_string(i)).c_str()), 0);
  d = opendir(path("big").c_str());
  size_t count = 0;
  while (readdir(d)) ++count;
  closedir(d);
  EXPECT_EQ(count, size_t(n / 2 + 2));
}

TEST_F(Posix, RenameFlags) {
  ASSERT_TRUE(write_file(path("a"), "A"));
  ASSERT_TRUE(write_file(path("b"), "B"));
  EXPECT_EQ(syscall(SYS_renameat2, AT_FDCWD, path("a").c_str(), AT_FDCWD, path("b").c_str(), RENAME_NOREPLACE), -1);
  EXPECT_EQ(errno, EEXIST);
  ASSERT_EQ(syscall(SYS_renameat2, AT_FDCWD, path("a").c_str(), AT_FDCWD, path("b").c_str(), RENAME_EXCHANGE), 0);
  EXPECT_EQ(read_file(path("a")), "B");
  EXPECT_EQ(read_file(path("b")), "A");
  ASSERT_EQ(rename(path("a").c_str(), path("b").c_str()), 0);
  EXPECT_EQ(read_file(path("b")), "B");
  EXPECT_EQ(access(path("a").c_str(), F_OK), -1);
  ASSERT_EQ(mkdir(path("x").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(path("x/y").c_str(), 0755), 0);
  EXPECT_EQ(rename(path("x").c_str(), path("x/y/z").c_str()), -1);
  EXPECT_EQ(errno, EINVAL);
  EXPECT_EQ(rename(path("b").c_str(), path("x").c_str()), -1);
  EXPECT_EQ(errno, EISDIR);
  ASSERT_EQ(rename(path("x/y").c_str(), path("y").c_str()), 0);
  struct stat st;
  ASSERT_EQ(stat(path("x").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);
}

TEST_F(Posix, TruncateFallocateSeek) {
  ASSERT_TRUE(write_file(path("f"), std::string(10000, 'a')));
  ASSERT_EQ(truncate(path("f").c_str(), 100), 0);
  ASSERT_EQ(truncate(path("f").c_str(), 5000), 0);
  std::string s = read_file(path("f"));
  EXPECT_EQ(s, std::string(100, 'a') + std::string(4900, '\0'));
  EXPECT_EQ(truncate(path("missing").c_str(), 0), -1);
  int fd = open(path("g").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_EQ(fallocate(fd, 0, 0, 1 << 20), 0);
  struct stat st;
  fstat(fd, &st);
  EXPECT_EQ(st.st_size, 1 << 20);
  EXPECT_GE(st.st_blocks * 512, 1 << 20);
  ASSERT_EQ(fallocate(fd, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20), 0);
  fstat(fd, &st);
  EXPECT_EQ(st.st_size, 1 << 20);
  ASSERT_EQ(pwrite(fd, "data", 4, 65536), 4);
  EXPECT_EQ(lseek(fd, 0, SEEK_DATA), 65536);
  EXPECT_EQ(lseek(fd, 65536, SEEK_HOLE), 65536 + 4096);
  EXPECT_EQ(lseek(fd, 2 << 20, SEEK_DATA), -1);
  EXPECT_EQ(errno, ENXIO);
  ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 65536, 4096), 0);
  char b[4] = {1, 1, 1, 1};
  ASSERT_EQ(pread(fd, b, 4, 65536), 4);
  EXPECT_EQ(std::string(b, 4), std::string(4, '\0'));
  ASSERT_EQ(pwrite(fd, "zzzz", 4, 8192), 4);
  ASSERT_EQ(fallocate(fd, FALLOC_FL_ZERO_RANGE, 8192, 2), 0);
  ASSERT_EQ(pread(fd, b, 4, 8192), 4);
  EXPECT_EQ(std::string(b, 4), std::string("\0\0zz", 4));
  EXPECT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096), -1);
  EXPECT_EQ(errno, EOPNOTSUPP);
  close(fd);
}

TEST_F(Posix, AttributesAndTimes) {
  ASSERT_TRUE(write_file(path("f"), "x"));
  ASSERT_EQ(chmod(path("f").c_str(), 04755), 0);
  ASSERT_EQ(chown(path("f").c_str(), 1000, 1000), 0);
  struct stat st;
  ASSERT_EQ(stat(path("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_mode & 07777, 0755u);  // chown cleared setuid
  struct timespec t[2] = {{1000, 123456789}, {2000, 987654321}};
  ASSERT_EQ(utimensat(AT_FDCWD, path("f").c_str(), t, 0), 0);
  ASSERT_EQ(stat(path("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_atim.tv_sec, 1000);
  EXPECT_EQ(st.st_atim.tv_nsec, 123456789);
  EXPECT_EQ(st.st_mtim.tv_sec, 2000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 987654321);
  struct statvfs v;
  ASSERT_EQ(statvfs(mnt_.c_str(), &v), 0);
  EXPECT_EQ(v.f_bsize, 4096u);
  EXPECT_GT(v.f_bfree, 0u);
  EXPECT_EQ(v.f_namemax, 255u);
}

TEST_F(Posix, Xattrs) {
  ASSERT_TRUE(write_file(path("f"), "x"));
  ASSERT_EQ(setxattr(path("f").c_str(), "user.k", "v", 1, 0), 0);
  char buf[16];
  ASSERT_EQ(getxattr(path("f").c_str(), "user.k", buf, sizeof buf), 1);
  EXPECT_EQ(getxattr(path("f").c_str(), "user.none", buf, sizeof buf), -1);
  EXPECT_EQ(errno, ENODATA);
  EXPECT_EQ(setxattr(path("f").c_str(), "user.k", "w", 1, XATTR_CREATE), -1);
  EXPECT_EQ(errno, EEXIST);
  EXPECT_EQ(getxattr(path("f").c_str(), "user.k", buf, 0), 1);
  ASSERT_EQ(setxattr(path("f").c_str(), "user.long", "0123456789", 10, 0), 0);
  EXPECT_EQ(getxattr(path("f").c_str(), "user.long", buf, 2), -1);
  EXPECT_EQ(errno, ERANGE);
  char list[256];
  ssize_t n = listxattr(path("f").c_str(), list, sizeof list);
  EXPECT_EQ(n, ssize_t(sizeof("user.k") + sizeof("user.long")));
  ASSERT_EQ(removexattr(path("f").c_str(), "user.k"), 0);
  EXPECT_EQ(removexattr(path("f").c_str(), "user.k"), -1);
  EXPECT_EQ(errno, ENODATA);
}

TEST_F(Posix, PermissionsAsUnprivilegedUser) {
  ASSERT_TRUE(write_file(path("secret"), "s"));
  ASSERT_EQ(chmod(path("secret").c_str(), 0600), 0);
  ASSERT_TRUE(write_file(path("public"), "p"));
  ASSERT_EQ(mkdir(path("open").c_str(), 0777), 0);
  ASSERT_EQ(chmod(path("open").c_str(), 0777), 0);  // mkdir applied the umask
  std::string secret = path("secret"), pub = path("public"), root_new = path("new"), open_new = path("open/mine");
  EXPECT_EQ(as_nobody([&] { return errno_of(open(secret.c_str(), O_RDONLY)); }), EACCES);
  EXPECT_EQ(as_nobody([&] { return errno_of(open(pub.c_str(), O_RDONLY)); }), 0);
  EXPECT_EQ(as_nobody([&] { return errno_of(open(pub.c_str(), O_WRONLY)); }), EACCES);
  EXPECT_EQ(as_nobody([&] { return errno_of(open(root_new.c_str(), O_CREAT | O_WRONLY, 0644)); }), EACCES);
  EXPECT_EQ(as_nobody([&] { return errno_of(open(open_new.c_str(), O_CREAT | O_WRONLY, 0644)); }), 0);
  struct stat st;
  ASSERT_EQ(stat(open_new.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 65534u);
  EXPECT_EQ(as_nobody([&] { return errno_of(chmod(pub.c_str(), 0777)); }), EPERM);
  EXPECT_EQ(as_nobody([&] { return errno_of(chown(open_new.c_str(), 0, 0)); }), EPERM);
}

TEST_F(Posix, AclGrantsAccess) {
  ASSERT_TRUE(write_file(path("secret"), "s"));
  ASSERT_EQ(chmod(path("secret").c_str(), 0600), 0);
  // system.posix_acl_access: version 2, then (tag, perm, id) entries.
  struct Entry {
    uint16_t tag, perm;
    uint32_t id;
  };
  std::vector<char> acl(4);
  uint32_t version = 2;
  std::memcpy(acl.data(), &version, 4);
  Entry entries[] = {{0x01, 6, 0xFFFFFFFF}, {0x02, 4, 65534}, {0x04, 0, 0xFFFFFFFF}, {0x10, 4, 0xFFFFFFFF}, {0x20, 0, 0xFFFFFFFF}};
  acl.resize(4 + sizeof entries);
  std::memcpy(acl.data() + 4, entries, sizeof entries);
  ASSERT_EQ(setxattr(path("secret").c_str(), "system.posix_acl_access", acl.data(), acl.size(), 0), 0) << strerror(errno);
  std::string secret = path("secret");
  struct stat st;
  ASSERT_EQ(stat(secret.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);  // the group bits mirror the ACL mask
  EXPECT_EQ(as_nobody([&] { return errno_of(open(secret.c_str(), O_RDONLY)); }), 0);
  EXPECT_EQ(as_nobody([&] { return errno_of(open(secret.c_str(), O_WRONLY)); }), EACCES);
  // chmod rewrites the mask entry: group-class access goes, and the named user with it.
  ASSERT_EQ(chmod(secret.c_str(), 0600), 0);
  EXPECT_EQ(as_nobody([&] { return errno_of(open(secret.c_str(), O_RDONLY)); }), EACCES);
  // A directory's default ACL is inherited by what is created in it.
  ASSERT_EQ(mkdir(path("shared").c_str(), 0700), 0);
  std::vector<char> dflt(4);
  std::memcpy(dflt.data(), &version, 4);
  Entry dentries[] = {{0x01, 7, 0xFFFFFFFF}, {0x02, 6, 65534}, {0x04, 0, 0xFFFFFFFF}, {0x10, 6, 0xFFFFFFFF}, {0x20, 0, 0xFFFFFFFF}};
  dflt.resize(4 + sizeof dentries);
  std::memcpy(dflt.data() + 4, dentries, sizeof dentries);
  ASSERT_EQ(setxattr(path("shared").c_str(), "system.posix_acl_default", dflt.data(), dflt.size(), 0), 0) << strerror(errno);
  ASSERT_EQ(chmod(path("shared").c_str(), 0755), 0);
  int dfd = open(path("shared/doc").c_str(), O_CREAT | O_WRONLY, 0666);  // the mask keeps rw
  ASSERT_GE(dfd, 0);
  close(dfd);
  std::string doc = path("shared/doc");
  EXPECT_EQ(as_nobody([&] { return errno_of(open(doc.c_str(), O_WRONLY)); }), 0);
  ASSERT_EQ(mkdir(path("shared/sub").c_str(), 0755), 0);
  EXPECT_GT(getxattr(path("shared/sub").c_str(), "system.posix_acl_default", nullptr, 0), 0);
}

TEST_F(Posix, OpenUnlinkedFileKeepsData) {
  ASSERT_TRUE(write_file(path("f"), std::string(100000, 'k')));
  int fd = open(path("f").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(unlink(path("f").c_str()), 0);
  EXPECT_EQ(access(path("f").c_str(), F_OK), -1);
  std::string buf(100000, '\0');
  ASSERT_EQ(pread(fd, buf.data(), buf.size(), 0), 100000);
  EXPECT_EQ(buf, std::string(100000, 'k'));
  close(fd);
}

TEST_F(Posix, FsyncAndCopyFileRange) {
  ASSERT_TRUE(write_file(path("src"), std::string(300000, 'c')));
  int in = open(path("src").c_str(), O_RDONLY);
  int out = open(path("dst").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(in, 0);
  ASSERT_GE(out, 0);
  loff_t oi = 0, oo = 0;
  ssize_t n = copy_file_range(in, &oi, out, &oo, 300000, 0);
  EXPECT_EQ(n, 300000);
  EXPECT_EQ(fsync(out), 0);
  EXPECT_EQ(fdatasync(out), 0);
  close(in);
  close(out);
  EXPECT_EQ(read_file(path("dst")), std::string(300000, 'c'));
}

TEST_F(Posix, DataSurvivesRemount) {
  ASSERT_TRUE(write_file(path("keep"), "persisted"));
  ASSERT_EQ(mkdir(path("dir").c_str(), 0700), 0);
  unmount_fs();
  mount_fs(mount_options());
  EXPECT_EQ(read_file(path("keep")), "persisted");
  struct stat st;
  ASSERT_EQ(stat(path("dir").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(Posix, QemuImageCreateAndCheck) {
  if (run("command -v qemu-img >/dev/null") != 0) GTEST_SKIP() << "qemu-img not installed";
  std::string img = path("vm.qcow2");
  ASSERT_EQ(run("qemu-img create -q -f qcow2 " + img + " 20G"), 0);
  ASSERT_EQ(run("qemu-io -f qcow2 -t none -c 'write -P 0x5a 0 8M' -c 'write -P 0xa5 1G 4M' " + img + " >/dev/null"), 0);
  EXPECT_EQ(run("qemu-img check -q " + img), 0);
  EXPECT_EQ(run("qemu-io -f qcow2 -t none -c 'read -P 0x5a 0 8M' -c 'read -P 0xa5 1G 4M' " + img +
                " | grep -q 'Pattern verification failed'"), 256);  // grep finds nothing
  ASSERT_EQ(run("qemu-img create -q -f raw " + path("vm.raw") + " 16T"), 0);
  EXPECT_EQ(run("qemu-img check -q -f qcow2 " + img), 0);
}

class ReadOnlyMount : public LunfsMount {
 protected:
  std::string mount_options() const override { return "lockproto=nolock,ro"; }
};

TEST_F(ReadOnlyMount, RefusesWrites) {
  EXPECT_EQ(open(path("f").c_str(), O_CREAT | O_WRONLY, 0644), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(mkdir(path("d").c_str(), 0755), -1);
  EXPECT_EQ(errno, EROFS);
}

TEST(MountRefusal, BadSuperblockAndUnknownFeature) {
  if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0) GTEST_SKIP() << "needs root and /dev/fuse";
  char tmpl[] = "/tmp/lunfs-refuse-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl, lun = dir + "/lun.img", mnt = dir + "/mnt";
  mkdir(mnt.c_str(), 0755);
  std::string mount_cmd = LunfsMount::bin("mount.lunfs") + " " + lun + " " + mnt + " -o lockproto=nolock 2>" + dir + "/err";
  auto err = [&] {
    std::ifstream f(dir + "/err");
    return std::string((std::istreambuf_iterator<char>(f)), {});
  };
  ASSERT_EQ(run("truncate -s 256M " + lun), 0);
  int rc = run(mount_cmd);
  EXPECT_NE(rc, 0);
  EXPECT_NE(err().find("not a lunfs"), std::string::npos) << err();
  ASSERT_EQ(run(LunfsMount::bin("mkfs.lunfs") + " -q -t t:f -j 1 " + lun), 0);
  // Corrupt one byte of the primary superblock's body.
  ASSERT_EQ(run("printf '\\x99' | dd of=" + lun + " bs=1 seek=$((65536+200)) conv=notrunc status=none"), 0);
  EXPECT_NE(run(mount_cmd), 0);
  EXPECT_NE(err().find("bad superblock"), std::string::npos) << err();
  EXPECT_FALSE(is_mounted(mnt));
  run("umount -l " + mnt + " 2>/dev/null");
  run("rm -rf " + dir);
}

}  // namespace
}  // namespace lunfs::testing

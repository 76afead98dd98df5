// Core tests: each builds a fresh lunfs on a memory device, runs operations through
// FileSystem, unmounts, and requires fsck.lunfs's checker to find nothing wrong.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>
#include <string>

#include "fs/core/acl.h"
#include "fs/core/filesystem.h"
#include "fs/format/inode_format.h"
#include "fs/format/ondisk.h"
#include "fsck/checker.h"
#include "mkfs/formatter.h"

namespace lunfs {
namespace {

class CoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dev_ = make_memory_device(uint64_t{512} << 20);
    MkfsOptions o;
    o.cluster_name = "test";
    o.fs_name = "fs";
    o.journals = 2;
    o.rgrp_mib = 32;
    auto sb = plan_filesystem(*dev_, o);
    ASSERT_TRUE(sb) << sb.status().to_string();
    ASSERT_TRUE(write_filesystem(*dev_, *sb));
    log_ = std::make_unique<WriteThroughLog>(*dev_);
    remount();
  }
  void remount(MountOptions mo = {}) {
    fs_.reset();
    mo.logger = [this](const std::string& l) { log_lines_.push_back(l); };
    auto fs = FileSystem::mount(*dev_, *log_, lm_, mo);
    ASSERT_TRUE(fs) << fs.status().to_string();
    fs_ = std::move(*fs);
  }
  void expect_clean() {
    ASSERT_TRUE(fs_->unmount());
    auto report = check_filesystem(*dev_);
    ASSERT_TRUE(report) << report.status().to_string();
    for (const auto& f : report->findings) {
      if (f.kind == FsckFinding::Kind::kError) ADD_FAILURE() << "fsck: " << f.text;
    }
  }
  uint64_t root() { return fs_->root(); }
  uint64_t mkfile(uint64_t dir, const std::string& name, uint32_t mode = 0644) {
    auto a = fs_->mknod(dir, name, S_IFREG | mode, 0, {});
    EXPECT_TRUE(a) << a.status().to_string();
    return a ? a->ino : 0;
  }
  std::string read_all(uint64_t ino) {
    auto a = fs_->getattr(ino);
    std::string out(a->size, '\0');
    auto n = fs_->read(ino, 0, std::as_writable_bytes(std::span(out)));
    EXPECT_TRUE(n) << n.status().to_string();
    out.resize(n ? *n : 0);
    return out;
  }
  void write_str(uint64_t ino, uint64_t off, const std::string& s) {
    auto n = fs_->write(ino, off, std::as_bytes(std::span(s)));
    ASSERT_TRUE(n) << n.status().to_string();
    ASSERT_EQ(*n, s.size());
  }

  std::unique_ptr<BlockDevice> dev_;
  std::unique_ptr<WriteThroughLog> log_;
  NoLockManager lm_;
  std::unique_ptr<FileSystem> fs_;
  std::vector<std::string> log_lines_;
};

TEST_F(CoreTest, MountFreshAndFsckClean) {
  auto a = fs_->getattr(root());
  ASSERT_TRUE(a);
  EXPECT_TRUE(S_ISDIR(a->mode));
  EXPECT_EQ(a->nlink, 2u);
  expect_clean();
}

TEST_F(CoreTest, CreateLookupErrors) {
  uint64_t f = mkfile(root(), "a");
  EXPECT_EQ(fs_->mknod(root(), "a", S_IFREG | 0644, 0, {}).err(), EEXIST);
  EXPECT_EQ(fs_->lookup(root(), "missing").err(), ENOENT);
  EXPECT_EQ(fs_->lookup(root(), std::string(256, 'x')).err(), ENAMETOOLONG);
  EXPECT_EQ(fs_->mknod(root(), std::string(256, 'x'), S_IFREG, 0, {}).err(), ENAMETOOLONG);
  EXPECT_TRUE(fs_->mknod(root(), std::string(255, 'x'), S_IFREG, 0, {}));
  EXPECT_EQ(fs_->lookup(f, "x").err(), ENOTDIR);
  EXPECT_EQ(fs_->lookup(root(), "a")->ino, f);
  expect_clean();
}

TEST_F(CoreTest, InlineAndExtentData) {
  uint64_t f = mkfile(root(), "small");
  write_str(f, 0, "hello");
  EXPECT_EQ(read_all(f), "hello");
  // Grows past the inline capacity: converts to extents, keeps the bytes.
  std::string big(10000, 'z');
  write_str(f, 3, big);
  std::string want = "hel" + big;
  EXPECT_EQ(read_all(f), want);
  // Sparse write far away, reads zeros in between.
  write_str(f, 1 << 20, "tail");
  auto all = read_all(f);
  EXPECT_EQ(all.size(), (1u << 20) + 4);
  EXPECT_EQ(all.substr(0, want.size()), want);
  EXPECT_EQ(all.substr(want.size(), 100), std::string(100, '\0'));
  EXPECT_EQ(all.substr(1 << 20), "tail");
  expect_clean();
}

TEST_F(CoreTest, SequentialWritesAreContiguous) {
  uint64_t f = mkfile(root(), "img");
  std::string chunk(1 << 20, 'a');
  for (int i = 0; i < 16; ++i) write_str(f, uint64_t(i) << 20, chunk);
  auto a = fs_->getattr(f);
  // 16 MiB of data in 4 KiB blocks plus the inode: no tree nodes were needed.
  EXPECT_EQ(a->blocks512, (4096u + 1) * 8);
  EXPECT_EQ(fs_->lseek(f, 0, 4).value(), 16u << 20);  // SEEK_HOLE at EOF
  EXPECT_EQ(fs_->extents(f)->size(), 1u);
  // Small sequential appends merge into the same extent too.
  uint64_t g = mkfile(root(), "log");
  for (int i = 0; i < 100; ++i) write_str(g, uint64_t(i) * 4096, std::string(4096, 'l'));
  EXPECT_EQ(fs_->extents(g)->size(), 1u);
  expect_clean();
}

TEST_F(CoreTest, ExtentTreeSplitsUnderManyExtents) {
  uint64_t f = mkfile(root(), "sparse");
  // Every other block: thousands of extents force leaf splits and a deeper tree.
  std::string block(4096, 'q');
  for (int i = 0; i < 3000; ++i) write_str(f, uint64_t(i) * 2 * 4096, block);
  for (int i = 0; i < 3000; i += 97) {
    std::string got(4096, '\0');
    ASSERT_EQ(*fs_->read(f, uint64_t(i) * 2 * 4096, std::as_writable_bytes(std::span(got))), 4096u);
    EXPECT_EQ(got, block);
    ASSERT_EQ(*fs_->read(f, uint64_t(i) * 2 * 4096 + 4096, std::as_writable_bytes(std::span(got))), 4096u);
    EXPECT_EQ(got, std::string(4096, '\0'));
  }
  expect_clean();
  remount();
  // Truncate down frees everything past the new end; the tree stays valid.
  SetAttr sa;
  sa.size = 1000 * 4096;
  ASSERT_TRUE(fs_->setattr(f, sa));
  sa.size = 0;
  ASSERT_TRUE(fs_->setattr(f, sa));
  EXPECT_EQ(fs_->getattr(f)->blocks512, 8u);
  expect_clean();
}

TEST_F(CoreTest, TruncateUpFreshFileIsSparse) {
  uint64_t f = mkfile(root(), "raw.img");
  SetAttr sa;
  sa.size = uint64_t{16} << 40;  // qemu-img create -f raw: a 16 TiB hole
  ASSERT_TRUE(fs_->setattr(f, sa));
  EXPECT_EQ(fs_->getattr(f)->blocks512, 8u);
  write_str(f, (uint64_t{16} << 40) - 5, "tail!");
  EXPECT_EQ(fs_->lseek(f, 0, 3).value(), (uint64_t{16} << 40) - 4096);
  expect_clean();
}

TEST_F(CoreTest, TruncateZeroesTail) {
  uint64_t f = mkfile(root(), "t");
  write_str(f, 0, std::string(8192, 'x'));
  SetAttr sa;
  sa.size = 100;
  ASSERT_TRUE(fs_->setattr(f, sa));
  sa.size = 8192;
  ASSERT_TRUE(fs_->setattr(f, sa));
  auto all = read_all(f);
  EXPECT_EQ(all.substr(0, 100), std::string(100, 'x'));
  EXPECT_EQ(all.substr(100), std::string(8092, '\0'));
  expect_clean();
}

TEST_F(CoreTest, DirectoriesInlineToHashedAndReaddirCookies) {
  auto d = fs_->mkdir(root(), "d", 0755, {});
  ASSERT_TRUE(d);
  std::map<std::string, uint64_t> names;
  for (int i = 0; i < 3000; ++i) {
    std::string n = "file-with-a-longish-name-" + std::to_string(i);
    names[n] = mkfile(d->ino, n);
  }
  for (auto& [n, ino] : names) ASSERT_EQ(fs_->lookup(d->ino, n)->ino, ino) << n;
  // readdir in small batches while removing entries already returned: no entry is lost
  // or repeated among the survivors.
  std::map<std::string, int> seen;
  uint64_t off = 0;
  int removed = 0;
  for (;;) {
    std::vector<DirListing> batch;
    ASSERT_TRUE(fs_->readdir(d->ino, off, [&](const DirListing& l) {
      batch.push_back(l);
      return batch.size() < 50;
    }));
    if (batch.empty()) break;
    for (auto& l : batch) {
      seen[l.name]++;
      off = l.next_offset;
    }
    // Remove one returned entry per batch.
    const auto& victim = batch.front().name;
    if (victim != "." && victim != "..") {
      ASSERT_TRUE(fs_->unlink(d->ino, victim));
      ++removed;
    }
  }
  for (auto& [n, ino] : names) EXPECT_EQ(seen[n], 1) << n;
  EXPECT_EQ(seen["."], 1);
  EXPECT_GT(removed, 10);
  expect_clean();
}

TEST_F(CoreTest, RmdirAndLinkCounts) {
  auto a = fs_->mkdir(root(), "a", 0755, {});
  auto b = fs_->mkdir(a->ino, "b", 0755, {});
  ASSERT_TRUE(a && b);
  EXPECT_EQ(fs_->getattr(a->ino)->nlink, 3u);
  EXPECT_EQ(fs_->getattr(root())->nlink, 3u);
  EXPECT_EQ(fs_->rmdir(root(), "a").err(), ENOTEMPTY);
  EXPECT_EQ(fs_->unlink(root(), "a").err(), EISDIR);
  mkfile(b->ino, "f");
  EXPECT_EQ(fs_->rmdir(b->ino, "f").err(), ENOTDIR);
  ASSERT_TRUE(fs_->unlink(b->ino, "f"));
  ASSERT_TRUE(fs_->rmdir(a->ino, "b"));
  EXPECT_EQ(fs_->getattr(a->ino)->nlink, 2u);
  ASSERT_TRUE(fs_->rmdir(root(), "a"));
  EXPECT_EQ(fs_->getattr(root())->nlink, 2u);
  expect_clean();
}

TEST_F(CoreTest, HardLinksSymlinksSpecialFiles) {
  uint64_t f = mkfile(root(), "f");
  ASSERT_TRUE(fs_->link(f, root(), "g"));
  EXPECT_EQ(fs_->getattr(f)->nlink, 2u);
  EXPECT_EQ(fs_->link(root(), root(), "x").err(), EPERM);
  auto s = fs_->symlink(root(), "s", "target/path", {});
  ASSERT_TRUE(s);
  EXPECT_EQ(*fs_->readlink(s->ino), "target/path");
  EXPECT_EQ(fs_->readlink(f).err(), EINVAL);
  ASSERT_TRUE(fs_->mknod(root(), "fifo", S_IFIFO | 0600, 0, {}));
  ASSERT_TRUE(fs_->mknod(root(), "chr", S_IFCHR | 0600, makedev(1, 3), {}));
  ASSERT_TRUE(fs_->mknod(root(), "sock", S_IFSOCK | 0600, 0, {}));
  EXPECT_EQ(fs_->lookup(root(), "chr")->rdev, makedev(1, 3));
  ASSERT_TRUE(fs_->unlink(root(), "f"));
  EXPECT_EQ(fs_->getattr(f)->nlink, 1u);
  expect_clean();
}

TEST_F(CoreTest, OpenUnlinkedKeepsDataUntilLastReference) {
  uint64_t f = mkfile(root(), "f");
  write_str(f, 0, std::string(100000, 'd'));
  fs_->hold(f);
  auto before = fs_->statfs();
  ASSERT_TRUE(fs_->unlink(root(), "f"));
  EXPECT_EQ(fs_->lookup(root(), "f").err(), ENOENT);
  EXPECT_EQ(read_all(f), std::string(100000, 'd'));
  EXPECT_EQ(fs_->statfs()->free_blocks, before->free_blocks);
  ASSERT_TRUE(fs_->forget(f, 1));
  EXPECT_GT(fs_->statfs()->free_blocks, before->free_blocks);
  expect_clean();
}

TEST_F(CoreTest, OrphanFreedAtNextMount) {
  uint64_t f = mkfile(root(), "f");
  write_str(f, 0, std::string(50000, 'd'));
  fs_->hold(f);
  ASSERT_TRUE(fs_->unlink(root(), "f"));
  ASSERT_TRUE(fs_->unmount());  // "crash" with the file still open
  auto report = check_filesystem(*dev_);
  ASSERT_TRUE(report);
  EXPECT_EQ(report->errors(), 0u);
  EXPECT_TRUE(report->mentions("unlinked while open"));
  remount();
  expect_clean();
  auto r2 = check_filesystem(*dev_);
  EXPECT_FALSE(r2->mentions("unlinked while open"));
}

TEST_F(CoreTest, FreedSpaceReusableAtOnce) {
  auto st0 = fs_->statfs();
  uint64_t f = mkfile(root(), "f");
  write_str(f, 0, std::string(1 << 20, 'a'));
  ASSERT_TRUE(fs_->unlink(root(), "f"));
  EXPECT_EQ(fs_->statfs()->free_blocks, st0->free_blocks);
  expect_clean();
}

TEST_F(CoreTest, RenameVariants) {
  auto a = fs_->mkdir(root(), "a", 0755, {});
  auto b = fs_->mkdir(root(), "b", 0755, {});
  uint64_t f = mkfile(a->ino, "f");
  uint64_t g = mkfile(b->ino, "g");
  ASSERT_TRUE(fs_->rename(a->ino, "f", b->ino, "f2", 0));
  EXPECT_EQ(fs_->lookup(b->ino, "f2")->ino, f);
  EXPECT_EQ(fs_->rename(b->ino, "f2", b->ino, "g", 1).err(), EEXIST);  // NOREPLACE
  ASSERT_TRUE(fs_->rename(b->ino, "f2", b->ino, "g", 2));              // EXCHANGE
  EXPECT_EQ(fs_->lookup(b->ino, "g")->ino, f);
  EXPECT_EQ(fs_->lookup(b->ino, "f2")->ino, g);
  ASSERT_TRUE(fs_->rename(b->ino, "f2", b->ino, "g", 0));  // replace: g's old inode goes
  EXPECT_EQ(fs_->lookup(b->ino, "g")->ino, g);
  // Directory moves: parent and link counts follow; loops are refused.
  ASSERT_TRUE(fs_->rename(root(), "b", a->ino, "b", 0));
  EXPECT_EQ(fs_->getattr(a->ino)->nlink, 3u);
  EXPECT_EQ(fs_->lookup(b->ino, "..")->ino, a->ino);
  EXPECT_EQ(fs_->rename(root(), "a", b->ino, "x", 0).err(), EINVAL);
  auto c = fs_->mkdir(root(), "c", 0755, {});
  ASSERT_TRUE(c);
  ASSERT_TRUE(fs_->rename(a->ino, "b", root(), "c", 0));  // b is empty: replaces c
  expect_clean();
}

TEST_F(CoreTest, RenameOverEmptyDirAndErrors) {
  auto a = fs_->mkdir(root(), "a", 0755, {});
  auto b = fs_->mkdir(root(), "b", 0755, {});
  uint64_t f = mkfile(root(), "f");
  (void)f;
  EXPECT_EQ(fs_->rename(root(), "f", root(), "a", 0).err(), EISDIR);
  EXPECT_EQ(fs_->rename(root(), "a", root(), "f", 0).err(), ENOTDIR);
  mkfile(b->ino, "x");
  EXPECT_EQ(fs_->rename(root(), "a", root(), "b", 0).err(), ENOTEMPTY);
  ASSERT_TRUE(fs_->unlink(b->ino, "x"));
  ASSERT_TRUE(fs_->rename(root(), "a", root(), "b", 0));
  EXPECT_EQ(fs_->lookup(root(), "b")->ino, a->ino);
  EXPECT_EQ(fs_->getattr(root())->nlink, 3u);
  EXPECT_EQ(fs_->rename(root(), "nope", root(), "x", 0).err(), ENOENT);
  expect_clean();
}

TEST_F(CoreTest, SetattrChmodChownUtimens) {
  uint64_t f = mkfile(root(), "f", 06755);
  SetAttr sa;
  sa.uid = 1000;
  ASSERT_TRUE(fs_->setattr(f, sa));
  auto a = fs_->getattr(f);
  EXPECT_EQ(a->uid, 1000u);
  EXPECT_EQ(a->mode & 07777, 0755u);  // setuid and (group-exec) setgid cleared
  SetAttr times;
  times.mtime = ondisk::Timespec{1234567890, 123456789};
  times.atime = ondisk::Timespec{1000, 1};
  ASSERT_TRUE(fs_->setattr(f, times));
  remount();
  a = fs_->getattr(f);
  EXPECT_EQ(a->mtime.sec, 1234567890);
  EXPECT_EQ(a->mtime.nsec, 123456789u);
  EXPECT_EQ(a->atime.nsec, 1u);
  expect_clean();
}

TEST_F(CoreTest, FallocateModesAndSeek) {
  uint64_t f = mkfile(root(), "f");
  ASSERT_TRUE(fs_->fallocate(f, 0, 0, 1 << 20));
  EXPECT_EQ(fs_->getattr(f)->size, 1u << 20);
  EXPECT_EQ(read_all(f), std::string(1 << 20, '\0'));
  EXPECT_EQ(fs_->lseek(f, 0, 3).err(), ENXIO);  // preallocated only: no data
  write_str(f, 8192, "data");
  EXPECT_EQ(*fs_->lseek(f, 0, 3), 8192u);
  EXPECT_EQ(*fs_->lseek(f, 8192, 4), 12288u);
  ASSERT_TRUE(fs_->fallocate(f, kFallocKeepSize, 1 << 20, 1 << 20));
  EXPECT_EQ(fs_->getattr(f)->size, 1u << 20);
  write_str(f, 0, std::string(65536, 'x'));
  ASSERT_TRUE(fs_->fallocate(f, kFallocPunchHole | kFallocKeepSize, 100, 10000));
  auto all = read_all(f);
  EXPECT_EQ(all.substr(0, 100), std::string(100, 'x'));
  EXPECT_EQ(all.substr(100, 10000), std::string(10000, '\0'));
  EXPECT_EQ(all.substr(10100, 100), std::string(100, 'x'));
  ASSERT_TRUE(fs_->fallocate(f, kFallocZeroRange, 20000, 30000));
  all = read_all(f);
  EXPECT_EQ(all.substr(20000, 30000), std::string(30000, '\0'));
  EXPECT_EQ(all.substr(50000, 100), std::string(100, 'x'));
  EXPECT_EQ(fs_->fallocate(f, kFallocPunchHole, 0, 1).err(), EOPNOTSUPP);
  expect_clean();
}

TEST_F(CoreTest, Xattrs) {
  uint64_t f = mkfile(root(), "f");
  ASSERT_TRUE(fs_->setxattr(f, "user.a", "1", 0));
  EXPECT_EQ(fs_->setxattr(f, "user.a", "2", 1).err(), EEXIST);
  EXPECT_EQ(fs_->setxattr(f, "user.b", "2", 2).err(), ENODATA);
  ASSERT_TRUE(fs_->setxattr(f, "trusted.t", "tt", 0));
  EXPECT_EQ(fs_->setxattr(f, "system.posix_acl_access", std::string("\x02\0\0\0", 4), 0).err(), EINVAL);
  std::vector<AclEntry> acl = {{kAclUserObj, 6, ~0u}, {kAclUser, 4, 1000}, {kAclGroupObj, 0, ~0u},
                               {kAclMask, 4, ~0u}, {kAclOther, 0, ~0u}};
  ASSERT_TRUE(fs_->setxattr(f, "system.posix_acl_access", encode_acl(acl), 0));
  EXPECT_EQ(fs_->getattr(f)->mode & 0777, 0640u);
  SetAttr chmod;
  chmod.mode = 0600;
  ASSERT_TRUE(fs_->setattr(f, chmod));
  auto stored = parse_acl(*fs_->getxattr(f, "system.posix_acl_access"));
  ASSERT_TRUE(stored);
  EXPECT_EQ((*stored)[3].perm, 0u);  // the mask follows the group bits
  EXPECT_EQ(*fs_->getxattr(f, "user.a"), "1");
  EXPECT_EQ(fs_->getxattr(f, "user.zz").err(), ENODATA);
  EXPECT_EQ(fs_->getxattr(f, "bogus.x").err(), EOPNOTSUPP);
  EXPECT_EQ(fs_->listxattr(f)->size(), 3u);
  EXPECT_EQ(fs_->setxattr(f, "user.big", std::string(8000, 'v'), 0).err(), ENOSPC);
  ASSERT_TRUE(fs_->removexattr(f, "user.a"));
  ASSERT_TRUE(fs_->removexattr(f, "trusted.t"));
  ASSERT_TRUE(fs_->removexattr(f, "system.posix_acl_access"));
  EXPECT_EQ(fs_->getattr(f)->blocks512, 8u);
  expect_clean();
}

TEST_F(CoreTest, CorruptInodeGivesEioAndLogLine) {
  uint64_t f = mkfile(root(), "f");
  write_str(f, 0, "x");
  ASSERT_TRUE(fs_->unmount());
  // Flip a byte in the inode block.
  AlignedBuffer blk(4096);
  ASSERT_TRUE(dev_->read(f * 4096, blk.span()));
  blk.data()[200] ^= std::byte{0xff};
  ASSERT_TRUE(dev_->write(f * 4096, blk.span()));
  remount();
  EXPECT_EQ(fs_->lookup(root(), "f").err(), EIO);
  bool named = false;
  for (auto& l : log_lines_) named |= l.find(std::to_string(f)) != std::string::npos;
  EXPECT_TRUE(named);
  EXPECT_TRUE(fs_->getattr(root()));  // the rest stays usable
}

TEST_F(CoreTest, CorruptRgrpWithdraws) {
  mkfile(root(), "f");
  ASSERT_TRUE(fs_->unmount());
  auto g = fs_->superblock().geometry;
  for (uint32_t i = 0; i < g.rgrp_count; ++i) {
    AlignedBuffer blk(4096);
    uint64_t h = g.rgrp(i).header;
    ASSERT_TRUE(dev_->read(h * 4096, blk.span()));
    blk.data()[100] ^= std::byte{0xff};
    ASSERT_TRUE(dev_->write(h * 4096, blk.span()));
  }
  remount();
  EXPECT_TRUE(fs_->withdrawn());
  EXPECT_EQ(fs_->mknod(root(), "g", S_IFREG | 0644, 0, {}).err(), EROFS);
  EXPECT_TRUE(fs_->lookup(root(), "f"));
}

TEST_F(CoreTest, RandomOpsAgainstModel) {
  std::mt19937 rng(12345);
  std::map<std::string, std::string> model;
  std::map<std::string, uint64_t> inos;
  for (int step = 0; step < 1500; ++step) {
    std::string name = 'f' + std::to_string(rng() % 20);
    int op = rng() % 5;
    if (op == 0 && !inos.count(name)) {
      inos[name] = mkfile(root(), name);
      model[name] = "";
    } else if (op == 1 && inos.count(name)) {
      uint64_t off = rng() % 200000;
      std::string data(rng() % 20000 + 1, char('a' + rng() % 26));
      write_str(inos[name], off, data);
      auto& m = model[name];
      if (m.size() < off + data.size()) m.resize(off + data.size(), '\0');
      m.replace(off, data.size(), data);
    } else if (op == 2 && inos.count(name)) {
      uint64_t sz = rng() % 150000;
      SetAttr sa;
      sa.size = sz;
      ASSERT_TRUE(fs_->setattr(inos[name], sa));
      model[name].resize(sz, '\0');
    } else if (op == 3 && inos.count(name)) {
      uint64_t off = rng() % 150000, len = rng() % 50000 + 1;
      ASSERT_TRUE(fs_->fallocate(inos[name], kFallocPunchHole | kFallocKeepSize, off, len));
      auto& m = model[name];
      for (uint64_t i = off; i < std::min<uint64_t>(m.size(), off + len); ++i) m[i] = '\0';
    } else if (op == 4 && inos.count(name)) {
      ASSERT_TRUE(fs_->unlink(root(), name));
      inos.erase(name);
      model.erase(name);
    }
    if (step % 50 == 0) {
      for (auto& [n, ino] : inos) ASSERT_EQ(read_all(ino), model[n]) << "step " << step << " " << n;
    }
  }
  for (auto& [n, ino] : inos) ASSERT_EQ(read_all(ino), model[n]) << n;
  expect_clean();
}

}  // namespace
}  // namespace lunfs

// Cache invalidation between mounts of one device (sim_cluster.h): each test has one node
// cache something, another node change it, and the first read it again; it must see the
// change. One test per kind of cached state a glock covers (docs/core.md, "Invalidation"),
// and the two costs that make "a lock held is a cache" (decision 5) worth it.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/core/sim_cluster.h"

namespace lunfs::testing {
namespace {

std::span<const std::byte> bytes(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

std::string read_all(FileSystem& fs, uint64_t ino, size_t size) {
  std::string buf(size, '\0');
  auto n = fs.read(ino, 0, std::as_writable_bytes(std::span(buf.data(), buf.size())));
  EXPECT_TRUE(n) << n.status().to_string();
  buf.resize(n ? *n : 0);
  return buf;
}

class Invalidation : public ::testing::Test {
 protected:
  SimCluster c{2, 7, SimLayout{.block_size = 1024}};
  FileSystem& a() { return c.fs(0); }
  FileSystem& b() { return c.fs(1); }
  uint64_t mkfile(FileSystem& fs, uint64_t dir, const std::string& name) {
    auto r = fs.mknod(dir, name, S_IFREG | 0644, 0, {});
    EXPECT_TRUE(r) << name << ": " << r.status().to_string();
    return r ? r->ino : 0;
  }
  void TearDown() override {
    if (c.ok()) c.expect_clean_unmount();
  }
};

TEST_F(Invalidation, LookupFindsAnInodeAnotherNodeCreated) {
  // The allocator's copy of the group (read at mount) says the block is free.
  ASSERT_TRUE(c.ok());
  uint64_t ino = mkfile(a(), c.root(), "f");
  auto l = b().lookup(c.root(), "f");
  ASSERT_TRUE(l) << l.status().to_string();
  EXPECT_EQ(l->ino, ino);
}

TEST_F(Invalidation, DirectoryLeavesAndHashBlocks) {
  ASSERT_TRUE(c.ok());
  auto d = a().mkdir(c.root(), "d", 0755, {});
  ASSERT_TRUE(d);
  for (int i = 0; i < 80; ++i) mkfile(a(), d->ino, "entry-" + std::to_string(i));  // hashed by now
  for (int i = 0; i < 80; ++i) ASSERT_TRUE(b().lookup(d->ino, "entry-" + std::to_string(i)));
  uint64_t late = mkfile(a(), d->ino, "late");
  ASSERT_TRUE(a().unlink(d->ino, "entry-3"));
  auto l = b().lookup(d->ino, "late");
  ASSERT_TRUE(l) << l.status().to_string();
  EXPECT_EQ(l->ino, late);
  EXPECT_EQ(b().lookup(d->ino, "entry-3").err(), ENOENT);
  size_t listed = 0;
  ASSERT_TRUE(b().readdir(d->ino, 0, [&](const DirListing&) { return ++listed, true; }));
  EXPECT_EQ(listed, 2u + 80u);
}

TEST_F(Invalidation, ExtentNodes) {
  ASSERT_TRUE(c.ok());
  uint64_t f = mkfile(a(), c.root(), "f");
  std::string model(200 * 1024, '\0');
  // Every other block: far more extents than the inode's root holds.
  for (int blk = 0; blk < 200; blk += 2) {
    std::string data(1024, static_cast<char>('a' + blk % 26));
    ASSERT_TRUE(a().write(f, blk * 1024, bytes(data)));
    model.replace(blk * 1024, 1024, data);
  }
  model.resize(199 * 1024);
  EXPECT_EQ(read_all(b(), f, model.size()), model);
  for (int blk = 1; blk < 199; blk += 4) {  // fill some holes: the tree's nodes change
    std::string data(1024, 'Z');
    ASSERT_TRUE(a().write(f, blk * 1024, bytes(data)));
    model.replace(blk * 1024, 1024, data);
  }
  EXPECT_EQ(read_all(b(), f, model.size()), model);
}

TEST_F(Invalidation, XattrBlock) {
  ASSERT_TRUE(c.ok());
  uint64_t f = mkfile(a(), c.root(), "f");
  ASSERT_TRUE(a().setxattr(f, "user.k", "first", 0));
  EXPECT_EQ(*b().getxattr(f, "user.k"), "first");
  ASSERT_TRUE(a().setxattr(f, "user.k", "second", 0));
  auto v = b().getxattr(f, "user.k");
  ASSERT_TRUE(v) << v.status().to_string();
  EXPECT_EQ(*v, "second");
}

TEST_F(Invalidation, AllocatorRereadsAGroupAnotherNodeAllocatedFrom) {
  // Both nodes allocate next to the same directory, so from the same group, in turns; a
  // stale bitmap would hand the same blocks out twice (fsck at teardown, and the contents).
  ASSERT_TRUE(c.ok());
  std::vector<std::pair<uint64_t, std::string>> files;
  for (int i = 0; i < 8; ++i) {
    FileSystem& fs = i % 2 ? b() : a();
    uint64_t f = mkfile(fs, c.root(), "f" + std::to_string(i));
    std::string data(3 * 1024, static_cast<char>('a' + i));
    ASSERT_TRUE(fs.write(f, 0, bytes(data)));
    files.emplace_back(f, data);
  }
  for (auto& [f, data] : files) {
    EXPECT_EQ(read_all(a(), f, data.size()), data);
    EXPECT_EQ(read_all(b(), f, data.size()), data);
  }
}

TEST_F(Invalidation, StatfsCountsOtherNodesAllocations) {
  ASSERT_TRUE(c.ok());
  auto before = b().statfs();
  ASSERT_TRUE(before);
  uint64_t f = mkfile(a(), c.root(), "f");
  std::string data(64 * 1024, 'x');
  ASSERT_TRUE(a().write(f, 0, bytes(data)));
  ASSERT_TRUE(b().getattr(f));  // a's log goes home when it gives the inode glock up
  auto sa = a().statfs(), sb = b().statfs();
  ASSERT_TRUE(sa && sb);
  EXPECT_EQ(sb->free_blocks, sa->free_blocks);
  EXPECT_LT(sb->free_blocks, before->free_blocks);
  EXPECT_EQ(sb->files, sa->files);
}

TEST_F(Invalidation, LazyTimesAreWrittenBeforeTheGlockGoes) {
  ASSERT_TRUE(c.ok());
  uint64_t f = mkfile(a(), c.root(), "f");
  ASSERT_TRUE(a().write(f, 0, bytes(std::string(2048, 'x'))));
  SetAttr old;
  old.mtime = ondisk::Timespec{1000, 0};
  ASSERT_TRUE(a().setattr(f, old));
  ASSERT_TRUE(a().write(f, 0, bytes(std::string(1024, 'y'))));  // an overwrite: times kept in memory
  auto attr = b().getattr(f);
  ASSERT_TRUE(attr);
  EXPECT_GT(attr->mtime.sec, 1000);
}

TEST_F(Invalidation, FrontendReferencesSurviveADemote) {
  // The file is open on a (a FUSE reference); b's chmod takes the inode glock away. a's
  // unlink must still leave the open file's data until the last reference goes.
  ASSERT_TRUE(c.ok());
  uint64_t f = mkfile(a(), c.root(), "f");
  ASSERT_TRUE(a().write(f, 0, bytes("open file")));
  a().hold(f);
  SetAttr mode;
  mode.mode = 0600;
  ASSERT_TRUE(b().setattr(f, mode));
  ASSERT_TRUE(a().unlink(c.root(), "f"));
  EXPECT_EQ(read_all(a(), f, 9), "open file");
  EXPECT_TRUE(a().forget(f, 1));
  EXPECT_EQ(a().getattr(f).err(), ESTALE);
}

TEST_F(Invalidation, AWriteThatExtendsTakesTheGlockExclusively) {
  ASSERT_TRUE(c.ok());
  uint64_t f = mkfile(a(), c.root(), "f");
  ASSERT_TRUE(a().write(f, 0, bytes("abc")));
  ASSERT_TRUE(a().getattr(f));
  ASSERT_TRUE(b().getattr(f));  // both nodes hold it shared now
  ASSERT_TRUE(a().write(f, 3, bytes("defg")));
  auto attr = b().getattr(f);
  ASSERT_TRUE(attr);
  EXPECT_EQ(attr->size, 7u);
  EXPECT_EQ(read_all(b(), f, 7), "abcdefg");
}

TEST_F(Invalidation, RenameTakesTheMovedAndReplacedInodesGlocks) {
  ASSERT_TRUE(c.ok());
  auto d1 = a().mkdir(c.root(), "d1", 0755, {});
  auto d2 = a().mkdir(c.root(), "d2", 0755, {});
  ASSERT_TRUE(d1 && d2);
  auto sub = a().mkdir(d1->ino, "sub", 0755, {});
  ASSERT_TRUE(sub);
  uint64_t src = mkfile(a(), c.root(), "src");
  uint64_t dst = mkfile(a(), c.root(), "dst");
  ASSERT_EQ(b().lookup(sub->ino, "..")->ino, d1->ino);
  ASSERT_EQ(b().getattr(dst)->nlink, 1u);
  ASSERT_TRUE(a().rename(d1->ino, "sub", d2->ino, "sub", 0));
  ASSERT_TRUE(a().rename(c.root(), "src", c.root(), "dst", 0));
  auto up = b().lookup(sub->ino, "..");
  ASSERT_TRUE(up);
  EXPECT_EQ(up->ino, d2->ino);
  EXPECT_EQ(b().getattr(dst).err(), ESTALE);  // replaced and freed
  EXPECT_EQ(b().lookup(c.root(), "dst")->ino, src);
}

TEST_F(Invalidation, ADemoteWithNothingDirtyCostsNoDeviceWrites) {
  ASSERT_TRUE(c.ok());
  uint64_t f = mkfile(a(), c.root(), "f");
  ASSERT_TRUE(a().write(f, 0, bytes(std::string(4096, 'x'))));
  ASSERT_TRUE(a().sync());
  ASSERT_TRUE(c.journal(0).checkpoint());
  const uint64_t writes = c.dev().writes(), flushes = c.dev().flushes();
  c.locks().demote(0, {GlockType::kInode, f});
  c.locks().demote(0, {GlockType::kInode, c.root()});
  EXPECT_EQ(c.dev().writes(), writes);
  EXPECT_EQ(c.dev().flushes(), flushes);
  EXPECT_EQ(c.locks().held(0, {GlockType::kInode, f}), GlockMode::kUnlocked);
}

TEST_F(Invalidation, RepeatedReadsOfAHeldFileCostNoLockRequests) {
  ASSERT_TRUE(c.ok());
  uint64_t f = mkfile(a(), c.root(), "f");
  ASSERT_TRUE(a().write(f, 0, bytes(std::string(8192, 'x'))));
  ASSERT_EQ(read_all(a(), f, 8192).size(), 8192u);
  const uint64_t acquires = c.lm(0).acquires();
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(read_all(a(), f, 8192).size(), 8192u);
    ASSERT_TRUE(a().getattr(f));
  }
  EXPECT_EQ(c.lm(0).acquires(), acquires);
}

}  // namespace
}  // namespace lunfs::testing

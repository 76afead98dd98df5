// Entries and the frontend's references: a lookup (or create, mkdir, symlink, link) with
// Ref::kHold returns an inode that is already referenced, so an unlink that comes right
// after cannot free it; it stays readable, as an orphan, until the last forget. With
// lookup and hold as two calls, an unlink between them freed an inode the kernel then
// referenced (issue 11, item 5).
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <atomic>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "fs/core/filesystem.h"
#include "tests/core/fs_fixture.h"

namespace lunfs {
namespace {

using testing::FsFixture;
using testing::FsLayout;
constexpr auto kHold = FileSystem::Ref::kHold;

std::string read_all(FileSystem& fs, uint64_t ino, size_t size) {
  std::string buf(size + 100, '\0');
  auto n = fs.read(ino, 0, std::as_writable_bytes(std::span(buf)));
  if (!n) return "<" + n.status().to_string() + ">";
  buf.resize(*n);
  return buf;
}

TEST(EntryRef, HeldLookupKeepsAnUnlinkedInodeUntilForget) {
  FsFixture f(FsLayout{});
  ASSERT_TRUE(f.ok());
  FileSystem& fs = f.fs();
  const std::string data(20000, 'd');
  uint64_t ino = f.mkfile(f.root(), "f");
  ASSERT_TRUE(fs.write(ino, 0, std::as_bytes(std::span(data))));
  auto free_before = fs.statfs();
  ASSERT_TRUE(free_before);

  auto held = fs.lookup(f.root(), "f", kHold);
  ASSERT_TRUE(held) << held.status().to_string();
  ASSERT_EQ(held->ino, ino);
  ASSERT_TRUE(fs.unlink(f.root(), "f"));
  EXPECT_EQ(fs.lookup(f.root(), "f").err(), ENOENT);
  auto a = fs.getattr(ino);
  ASSERT_TRUE(a) << "the held inode was freed by the unlink: " << a.status().to_string();
  EXPECT_EQ(a->nlink, 0u);
  EXPECT_EQ(read_all(fs, ino, data.size()), data);
  EXPECT_EQ(fs.statfs()->free_blocks, free_before->free_blocks) << "blocks freed while referenced";

  ASSERT_TRUE(fs.forget(ino, 1));
  EXPECT_EQ(fs.getattr(ino).err(), ESTALE) << "the last forget frees the orphan";
  EXPECT_GT(fs.statfs()->free_blocks, free_before->free_blocks);
  f.expect_clean();
}

// Every call that hands out an entry takes the reference with it.
TEST(EntryRef, CreatedAndLinkedEntriesComeHeld) {
  FsFixture f(FsLayout{});
  ASSERT_TRUE(f.ok());
  FileSystem& fs = f.fs();
  const uint64_t root = f.root();
  auto file = fs.mknod(root, "file", S_IFREG | 0644, 0, {}, kHold);
  auto dir = fs.mkdir(root, "dir", 0755, {}, kHold);
  auto sym = fs.symlink(root, "sym", "target", {}, kHold);
  ASSERT_TRUE(file && dir && sym);
  auto other = fs.mknod(root, "other", S_IFREG | 0644, 0, {});
  ASSERT_TRUE(other);
  auto link = fs.link(other->ino, root, "link", kHold);
  ASSERT_TRUE(link);
  ASSERT_TRUE(fs.unlink(root, "file"));
  ASSERT_TRUE(fs.rmdir(root, "dir"));
  ASSERT_TRUE(fs.unlink(root, "sym"));
  ASSERT_TRUE(fs.unlink(root, "other"));
  ASSERT_TRUE(fs.unlink(root, "link"));
  for (uint64_t ino : {file->ino, dir->ino, sym->ino, other->ino}) {
    auto a = fs.getattr(ino);
    ASSERT_TRUE(a) << "inode " << ino << " freed while referenced: " << a.status().to_string();
    EXPECT_EQ(a->nlink, 0u);
  }
  EXPECT_EQ(*fs.readlink(sym->ino), "target");
  for (uint64_t ino : {file->ino, dir->ino, sym->ino, other->ino}) {
    ASSERT_TRUE(fs.forget(ino, 1));
    EXPECT_EQ(fs.getattr(ino).err(), ESTALE);
  }
  f.expect_clean();
}

// The race itself: one thread creates and unlinks a name over and over while another
// looks it up with a reference and then uses the inode, as the kernel would. Every inode
// a held lookup returned must stay usable until its forget.
TEST(EntryRef, UnlinkRacingHeldLookups) {
  FsFixture f(FsLayout{});
  ASSERT_TRUE(f.ok());
  FileSystem& fs = f.fs();
  const uint64_t root = f.root();
  std::atomic<bool> done{false};
  std::atomic<int> found{0}, lost{0};
  std::thread churn([&] {
    const std::string data(5000, 'c');
    // On a loaded machine the lookups may not run at first: churn until they met the file.
    for (int i = 0; i < 1500 || (found < 100 && i < 200000); ++i) {
      auto a = fs.mknod(root, "f", S_IFREG | 0644, 0, {});
      if (!a) continue;
      (void)fs.write(a->ino, 0, std::as_bytes(std::span(data)));
      (void)fs.unlink(root, "f");
    }
    done = true;
  });
  while (!done) {
    auto a = fs.lookup(root, "f", kHold);
    if (!a) continue;
    ++found;
    auto again = fs.getattr(a->ino);
    if (!again || again->ino != a->ino) ++lost;
    (void)fs.forget(a->ino, 1);
  }
  churn.join();
  EXPECT_EQ(lost, 0) << "inodes freed under a held lookup (of " << found << ")";
  EXPECT_GT(found, 0) << "the lookups never met the file: the test tested nothing";
  f.expect_clean();
}

}  // namespace
}  // namespace lunfs

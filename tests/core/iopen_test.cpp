// iopen glocks (decision 11) between mounts of one device (sim_cluster.h): an inode that
// loses its last link while some node uses it (a frontend reference: an open file) keeps
// its data until the last node lets go, and that node frees it; an inode nobody uses is
// freed by the unlink. "Freed" is checked the way an admin would: fsck over the device
// finds no inode left "unlinked while open", and the inode number is gone (ESTALE).
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <string>

#include "fsck/checker.h"
#include "tests/core/sim_cluster.h"

namespace lunfs::testing {
namespace {

std::span<const std::byte> bytes(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

std::string pattern(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7 % 251);
  return s;
}

class Iopen : public ::testing::Test {
 protected:
  SimCluster c{3, 11, SimLayout{.block_size = 1024}};
  FileSystem& node(size_t i) { return c.fs(i); }

  uint64_t make_file(const std::string& name, const std::string& data) {
    auto r = node(0).mknod(c.root(), name, S_IFREG | 0644, 0, {});
    EXPECT_TRUE(r) << r.status().to_string();
    if (!r) return 0;
    EXPECT_TRUE(node(0).write(r->ino, 0, bytes(data)));
    return r->ino;
  }
  // Node i opens `name` (the reference a FUSE lookup takes).
  void use(size_t i, const std::string& name) {
    auto r = node(i).lookup(c.root(), name, FileSystem::Ref::kHold);
    ASSERT_TRUE(r) << "node " << i << ": " << r.status().to_string();
  }
  std::string read(size_t i, uint64_t ino, size_t size) {
    std::string buf(size, '\0');
    auto n = node(i).read(ino, 0, std::as_writable_bytes(std::span(buf.data(), buf.size())));
    if (!n) return "<" + n.status().to_string() + ">";
    buf.resize(*n);
    return buf;
  }
  // fsck over the device, every journal written home first.
  FsckReport fsck() {
    for (size_t i = 0; i < c.size(); ++i) EXPECT_TRUE(c.journal(i).checkpoint());
    auto report = check_filesystem(c.dev());
    EXPECT_TRUE(report) << report.status().to_string();
    if (!report) return {};
    EXPECT_EQ(report->errors(), 0u);
    return *report;
  }
  bool left_unlinked(const FsckReport& r) { return r.mentions("unlinked while open"); }

  void TearDown() override {
    if (c.ok()) c.expect_clean_unmount();
  }
};

TEST_F(Iopen, AFileUnlinkedWhileAnotherNodeHasItOpenStaysReadableThereUntilItCloses) {
  ASSERT_TRUE(c.ok());
  const std::string data = pattern(64 * 1024, 'a');
  uint64_t f = make_file("f", data);
  use(1, "f");
  ASSERT_TRUE(node(0).unlink(c.root(), "f"));
  EXPECT_TRUE(left_unlinked(fsck()));
  // Node 0 allocates again: blocks freed by the unlink would be reused here.
  auto g = node(0).mknod(c.root(), "g", S_IFREG | 0644, 0, {});
  ASSERT_TRUE(g);
  ASSERT_TRUE(node(0).write(g->ino, 0, bytes(pattern(256 * 1024, 'z'))));
  EXPECT_TRUE(read(1, f, data.size()) == data);
  ASSERT_TRUE(node(1).forget(f, 1));
  EXPECT_FALSE(left_unlinked(fsck()));
  EXPECT_EQ(node(0).getattr(f).err(), ESTALE);
  EXPECT_EQ(node(2).getattr(f).err(), ESTALE);
}

TEST_F(Iopen, TheLastOfSeveralUsersFreesTheInode) {
  ASSERT_TRUE(c.ok());
  uint64_t f = make_file("f", pattern(8192, 'b'));
  use(0, "f");  // the unlinking node uses it too
  use(1, "f");
  use(2, "f");
  ASSERT_TRUE(node(0).unlink(c.root(), "f"));
  ASSERT_TRUE(node(0).forget(f, 1));
  ASSERT_TRUE(node(2).forget(f, 1));
  EXPECT_TRUE(left_unlinked(fsck()));  // node 1 still has it
  EXPECT_EQ(read(1, f, 8192), pattern(8192, 'b'));
  ASSERT_TRUE(node(1).forget(f, 1));
  EXPECT_FALSE(left_unlinked(fsck()));
  EXPECT_EQ(node(2).getattr(f).err(), ESTALE);
}

TEST_F(Iopen, AnInodeNobodyUsesIsFreedByTheUnlink) {
  ASSERT_TRUE(c.ok());
  uint64_t f = make_file("f", pattern(4096, 'c'));
  use(1, "f");
  ASSERT_TRUE(node(1).forget(f, 1));  // used and let go: its iopen glock went back
  ASSERT_TRUE(node(2).unlink(c.root(), "f"));
  EXPECT_FALSE(left_unlinked(fsck()));
  EXPECT_EQ(node(1).getattr(f).err(), ESTALE);
}

TEST_F(Iopen, RenameOverAndRmdirWaitForTheOtherNodesUsers) {
  ASSERT_TRUE(c.ok());
  uint64_t victim = make_file("victim", pattern(4096, 'd'));
  make_file("newer", pattern(100, 'e'));
  auto d = node(0).mkdir(c.root(), "d", 0755, {});
  ASSERT_TRUE(d);
  use(1, "victim");
  use(2, "d");
  ASSERT_TRUE(node(0).rename(c.root(), "newer", c.root(), "victim", 0));
  ASSERT_TRUE(node(0).rmdir(c.root(), "d"));
  EXPECT_TRUE(left_unlinked(fsck()));
  EXPECT_EQ(read(1, victim, 4096), pattern(4096, 'd'));
  ASSERT_TRUE(node(1).forget(victim, 1));
  ASSERT_TRUE(node(2).forget(d->ino, 1));
  EXPECT_FALSE(left_unlinked(fsck()));
}

TEST_F(Iopen, AFileCreatedAndOpenedOnOneNodeSurvivesAnUnlinkOnAnother) {
  // The creating node's reference (FUSE create) must protect it like a lookup's.
  ASSERT_TRUE(c.ok());
  auto r = node(1).mknod(c.root(), "mine", S_IFREG | 0644, 0, {}, FileSystem::Ref::kHold);
  ASSERT_TRUE(r);
  ASSERT_TRUE(node(1).write(r->ino, 0, bytes("still here")));
  ASSERT_TRUE(node(2).unlink(c.root(), "mine"));
  EXPECT_EQ(read(1, r->ino, 10), "still here");
  ASSERT_TRUE(node(1).forget(r->ino, 1));
  EXPECT_FALSE(left_unlinked(fsck()));
}

// What a node leaves behind when it goes without freeing the files it had open after
// their last unlink (a crash, recovered; here an unmount, which leaves orphans alike):
// another node's sweep frees exactly those nobody uses, and leaves the one still open.
TEST_F(Iopen, TheSweepAfterANodeWentFreesTheOrphansNobodyUses) {
  ASSERT_TRUE(c.ok());
  uint64_t gone = make_file("gone", pattern(48 * 1024, 'g'));
  uint64_t kept = make_file("kept", pattern(16 * 1024, 'k'));
  use(1, "gone");
  use(2, "kept");
  ASSERT_TRUE(node(0).unlink(c.root(), "gone"));
  ASSERT_TRUE(node(0).unlink(c.root(), "kept"));
  auto none = node(0).free_unused_orphans();
  ASSERT_TRUE(none) << none.status().to_string();
  EXPECT_EQ(*none, 0u) << "both are in use";
  ASSERT_TRUE(node(1).unmount());  // node 1 goes; "gone" stays unlinked on the LUN
  EXPECT_TRUE(left_unlinked(fsck()));
  auto freed = node(0).free_unused_orphans();
  ASSERT_TRUE(freed) << freed.status().to_string();
  EXPECT_EQ(*freed, 1u);
  EXPECT_EQ(node(0).getattr(gone).err(), ESTALE);
  EXPECT_EQ(read(2, kept, 16 * 1024), pattern(16 * 1024, 'k')) << "still open on node 2";
  ASSERT_TRUE(node(2).forget(kept, 1));
  EXPECT_FALSE(left_unlinked(fsck()));
}

}  // namespace
}  // namespace lunfs::testing

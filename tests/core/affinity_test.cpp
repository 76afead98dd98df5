// Resource-group affinity between mounts of one device (sim_cluster.h, decision 3): a node
// that creates and writes files in a directory another node made allocates from its own
// groups, not from the directory's (which the other node's rgrp glock covers), so two
// nodes writing images side by side do not pass one rgrp glock back and forth.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "tests/core/sim_cluster.h"

namespace lunfs::testing {
namespace {

TEST(Affinity, ANodeWritingInAnotherNodesDirectoryAllocatesFromItsOwnGroups) {
  SimCluster c{2, 3, SimLayout{.device_bytes = uint64_t{256} << 20, .block_size = 4096, .rgrp_mib = 32}};
  ASSERT_TRUE(c.ok());
  const auto& g = c.fs(0).superblock().geometry;
  ASSERT_GE(g.rgrp_count, 4u);
  auto d = c.fs(0).mkdir(c.root(), "images", 0755, {});
  ASSERT_TRUE(d);
  const std::string data(256 * 1024, 'v');
  auto write_image = [&](FileSystem& fs, const std::string& name) -> uint64_t {
    auto f = fs.mknod(d->ino, name, S_IFREG | 0644, 0, {});
    EXPECT_TRUE(f) << f.status().to_string();
    if (!f) return 0;
    EXPECT_TRUE(fs.write(f->ino, 0, std::as_bytes(std::span(data.data(), data.size()))));
    return f->ino;
  };
  const uint64_t mine = write_image(c.fs(0), "node0.img");
  const uint64_t theirs = write_image(c.fs(1), "node1.img");
  auto groups_of = [&](FileSystem& fs, uint64_t ino) {
    std::set<int64_t> groups{g.rgrp_of(ino)};
    auto ex = fs.extents(ino);
    EXPECT_TRUE(ex) << ex.status().to_string();
    if (ex) {
      for (const auto& e : *ex) groups.insert(g.rgrp_of(e.physical));
    }
    return groups;
  };
  const std::set<int64_t> node0 = groups_of(c.fs(0), mine), node1 = groups_of(c.fs(1), theirs);
  EXPECT_FALSE(node0.count(g.rgrp_of(d->ino)) == 0) << "node 0 allocates next to its own directory";
  for (int64_t rg : node1) {
    EXPECT_EQ(node0.count(rg), 0u) << "node 1 allocated in group " << rg << ", which node 0 uses";
  }
  c.expect_clean_unmount();
}

}  // namespace
}  // namespace lunfs::testing

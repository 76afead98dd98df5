// mount.lunfs command-line parsing.
#include <gtest/gtest.h>

#include "fuse/mount_options.h"

namespace lunfs {
namespace {

TEST(MountOptions, ParsesLunfsAndMountOptions) {
  auto c = parse_mount_command({"/dev/sdb", "/mnt", "-o", "lockproto=nolock,ro,noatime,debug,rw,defaults", "-f"});
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_EQ(c->device, "/dev/sdb");
  EXPECT_EQ(c->mountpoint, "/mnt");
  EXPECT_EQ(c->lockproto, "nolock");
  EXPECT_FALSE(c->read_only);  // the later rw wins
  EXPECT_TRUE(c->noatime);
  EXPECT_TRUE(c->debug);
  EXPECT_TRUE(c->foreground);
}

TEST(MountOptions, RefusesUnknown) {
  EXPECT_EQ(parse_mount_command({"a", "b", "-o", "bogus"}).err(), EINVAL);
  EXPECT_EQ(parse_mount_command({"a", "b", "-o", "lockproto=dlm"}).err(), EINVAL);
  EXPECT_EQ(parse_mount_command({"a"}).err(), EINVAL);
  EXPECT_EQ(parse_mount_command({"a", "b", "-o", "threads=0"}).err(), EINVAL);
}

}  // namespace
}  // namespace lunfs

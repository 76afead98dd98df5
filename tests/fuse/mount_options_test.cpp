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

// The fstab line of docs/admin.md: mount(8) hands the helper its userspace options too.
TEST(MountOptions, IgnoresTheOptionsOfMountAndSystemd) {
  auto c = parse_mount_command({"/dev/sdb", "/vm", "-o",
                                "lockproto=corosync,noatime,_netdev,nofail,x-systemd.requires=corosync.service,"
                                "x-systemd.after=corosync.service,comment=vm"});
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_EQ(c->lockproto, "corosync");
  EXPECT_TRUE(c->noatime);
  EXPECT_TRUE(c->fuse_options.empty());
}

TEST(MountOptions, RefusesUnknown) {
  EXPECT_EQ(parse_mount_command({"a", "b", "-o", "bogus"}).err(), EINVAL);
  EXPECT_EQ(parse_mount_command({"a", "b", "-o", "lockproto=dlm"}).err(), EINVAL);
  EXPECT_EQ(parse_mount_command({"a"}).err(), EINVAL);
  EXPECT_EQ(parse_mount_command({"a", "b", "-o", "threads=0"}).err(), EINVAL);
}

TEST(MountOptions, CommitIntervalDefaultsToFiveSeconds) {
  auto c = parse_mount_command({"/dev/sdb", "/mnt", "-o", "lockproto=nolock"});
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_EQ(c->commit_interval, std::chrono::seconds(5));
}

TEST(MountOptions, CommitIntervalTakesWholeSecondsInRange) {
  for (auto [text, seconds] : {std::pair{"1", 1}, {"30", 30}, {"3600", 3600}}) {
    auto c = parse_mount_command({"a", "b", "-o", std::string("commit=") + text});
    ASSERT_TRUE(c) << text << ": " << c.status().to_string();
    EXPECT_EQ(c->commit_interval, std::chrono::seconds(seconds)) << text;
  }
}

TEST(MountOptions, CommitIntervalOutOfRangeOrNotANumberIsRefusedInWords) {
  for (const char* bad : {"commit=0", "commit=-1", "commit=", "commit", "commit=5s", "commit=1.5", "commit=abc",
                          "commit=3601", "commit=99999999999999999999", "commit= 5"}) {
    auto c = parse_mount_command({"a", "b", "-o", bad});
    EXPECT_EQ(c.err(), EINVAL) << bad;
    EXPECT_NE(c.status().message().find("commit= takes whole seconds from 1 to 3600"), std::string::npos)
        << bad << ": " << c.status().message();
  }
}

TEST(MountOptions, HeartbeatIntervalDefaultsToFiveSecondsAndTakesWholeSecondsInRange) {
  auto d = parse_mount_command({"a", "b", "-o", "lockproto=nolock"});
  ASSERT_TRUE(d) << d.status().to_string();
  EXPECT_EQ(d->heartbeat_interval, std::chrono::seconds(5));
  EXPECT_FALSE(d->heartbeat_force);
  auto c = parse_mount_command({"a", "b", "-o", "heartbeat=1,heartbeat_force"});
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_EQ(c->heartbeat_interval, std::chrono::seconds(1));
  EXPECT_TRUE(c->heartbeat_force);
  for (const char* bad : {"heartbeat=0", "heartbeat=301", "heartbeat=2s", "heartbeat="}) {
    auto r = parse_mount_command({"a", "b", "-o", bad});
    EXPECT_EQ(r.err(), EINVAL) << bad;
    EXPECT_NE(r.status().message().find("heartbeat= takes whole seconds from 1 to 300"), std::string::npos)
        << bad << ": " << r.status().message();
  }
}

TEST(MountOptions, FenceAgentTakesAnAbsolutePathOnClusterMountsOnly) {
  auto c = parse_mount_command({"a", "b", "-o", "lockproto=corosync,fence_agent=/usr/sbin/fence-wrapper"});
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_EQ(c->fence_agent, "/usr/sbin/fence-wrapper");
  auto relative = parse_mount_command({"a", "b", "-o", "lockproto=corosync,fence_agent=fence_virsh"});
  EXPECT_EQ(relative.err(), EINVAL);
  EXPECT_NE(relative.status().message().find("fence_agent= needs an absolute path"), std::string::npos);
  auto nolock = parse_mount_command({"a", "b", "-o", "fence_agent=/usr/sbin/fence-wrapper"});
  EXPECT_EQ(nolock.err(), EINVAL);
  EXPECT_NE(nolock.status().message().find("for cluster mounts"), std::string::npos) << nolock.status().message();
}

TEST(MountOptions, LogfileTakesAnAbsolutePathForBackgroundMounts) {
  auto c = parse_mount_command({"a", "b", "-o", "lockproto=corosync,logfile=/var/log/lunfs.log"});
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_EQ(c->logfile, "/var/log/lunfs.log");
  auto foreground = parse_mount_command({"a", "b", "-f", "-o", "logfile=/var/log/lunfs.log"});
  EXPECT_EQ(foreground.err(), EINVAL);
  EXPECT_NE(foreground.status().message().find("with -f the messages stay on standard error"), std::string::npos)
      << foreground.status().message();
  for (const char* bad : {"logfile=", "logfile=relative.log"}) {
    auto r = parse_mount_command({"a", "b", "-o", bad});
    EXPECT_EQ(r.err(), EINVAL) << bad;
    EXPECT_NE(r.status().message().find("logfile= needs an absolute path"), std::string::npos) << r.status().message();
  }
}

TEST(MountOptions, WriteLogTakesAnAbsolutePath) {
  auto c = parse_mount_command({"a", "b", "-o", "lockproto=corosync,write_log=/var/tmp/writes"});
  ASSERT_TRUE(c) << c.status().to_string();
  EXPECT_EQ(c->write_log, "/var/tmp/writes");
  for (const char* bad : {"write_log=", "write_log=writes"}) {
    auto r = parse_mount_command({"a", "b", "-o", bad});
    EXPECT_EQ(r.err(), EINVAL) << bad;
    EXPECT_NE(r.status().message().find("write_log= needs an absolute path"), std::string::npos) << r.status().message();
  }
}

}  // namespace
}  // namespace lunfs

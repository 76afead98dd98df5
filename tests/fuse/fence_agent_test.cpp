// The fence agent call (fuse/fence_agent.h) with small shell agents: what the agent reads
// on stdin, success, a failure with its words, a hang cut at the timeout, a missing agent.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

#include "fuse/fence_agent.h"

namespace lunfs {
namespace {

class FenceAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/lunfs-fence-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)!std::system(("rm -rf " + dir_).c_str()); }
  std::string agent(const std::string& body) {
    const std::string path = dir_ + "/agent";
    std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
    chmod(path.c_str(), 0755);
    return path;
  }
  std::string read(const std::string& name) {
    std::ifstream f(dir_ + "/" + name);
    return std::string((std::istreambuf_iterator<char>(f)), {});
  }
  std::string dir_;
};

TEST_F(FenceAgentTest, TheAgentReadsActionOffAndThePlugAndItsSuccessCounts) {
  FenceAgent a{agent("cat > " + dir_ + "/input")};
  ASSERT_TRUE(fence_node(a, 7));
  EXPECT_EQ(read("input"), "action=off\nplug=7\nnodename=7\n");
}

TEST_F(FenceAgentTest, AFailureSaysHowTheAgentEndedAndWhatItSaid) {
  FenceAgent a{agent("cat > /dev/null; echo 'Failed: no such plug' >&2; exit 3")};
  Status st = fence_node(a, 2);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("exited 3: Failed: no such plug"), std::string::npos) << st.to_string();
  EXPECT_NE(st.message().find("plug=2"), std::string::npos) << st.to_string();

  FenceAgent missing{dir_ + "/no-such-agent"};
  Status gone = fence_node(missing, 2);
  ASSERT_FALSE(gone);
  EXPECT_NE(gone.message().find("exited 127"), std::string::npos) << gone.to_string();
}

TEST_F(FenceAgentTest, AnAgentThatHangsIsKilledAtTheTimeout) {
  FenceAgent a{agent("exec sleep 30"), std::chrono::seconds(1)};
  const auto start = std::chrono::steady_clock::now();
  Status st = fence_node(a, 4);
  EXPECT_EQ(st.err(), ETIMEDOUT) << st.to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20)) << "not killed";
}

}  // namespace
}  // namespace lunfs

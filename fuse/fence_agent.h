// A fence agent (issue 13, decision 7): an admin's command in the standard fence_*
// interface (fence-agents' "key=value" lines on stdin), which the recovering node runs to
// power off a dead node. Its success means the node cannot write any more, so its journal
// is replayed at once instead of after its disk lease runs out; a failure (or a timeout)
// leaves the lease to decide. lunfs passes:
//   action=off
//   plug=NODEID        the Corosync node id
//   nodename=NODEID
// The agent's own options (an address, a login, a password) and the map from node ids to
// its port names (a VM name, a PDU outlet) belong in a wrapper script readable by root
// only, which adds them and runs the real agent: mount options show in ps(1).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "fs/result.h"

namespace lunfs {

struct FenceAgent {
  std::string path;  // absolute; empty: no agent configured
  std::chrono::seconds timeout{60};
};

// Runs the agent to power off `node`; ok when it exits 0 within the timeout (it is killed
// after it). The error says what it printed on stderr, or how it ended.
Status fence_node(const FenceAgent& agent, uint32_t node);

}  // namespace lunfs

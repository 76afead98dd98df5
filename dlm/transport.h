// The lock space's view of group communication: agreed-order (total order) multicast to
// the members of one group, membership changes in the same order (virtual synchrony), and
// the local node's quorum. Implemented by Corosync CPG (cpg_transport) and by an
// in-process bus for deterministic tests (inproc_transport).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "dlm/types.h"

namespace lunfs::dlm {

struct Membership {
  std::vector<NodeId> members;  // after the change, including ourselves
  std::vector<NodeId> left;     // crashed, partitioned away or left
  std::vector<NodeId> joined;   // new, or merged back from another partition
};

// Called from one thread at a time, in delivery order. Calls into the Transport (send,
// leave) are allowed from inside these callbacks.
class TransportListener {
 public:
  virtual ~TransportListener() = default;
  virtual void on_deliver(NodeId from, std::string_view op) = 0;
  virtual void on_membership(const Membership& m) = 0;
  virtual void on_quorum(bool quorate) = 0;
  // The transport is gone for good (corosync died, the connection broke).
  virtual void on_transport_failed(Status why) = 0;
};

class Transport {
 public:
  virtual ~Transport() = default;  // leaves the group and stops every thread it started
  // Join the group, giving up after `timeout` (CPG waits for quorum first). The first
  // membership delivered has us in `joined`.
  virtual Status start(TransportListener* listener, std::chrono::milliseconds timeout) = 0;
  // Queue one operation for agreed-order multicast; the transport may batch several
  // queued operations into one message. Never blocks on the network.
  virtual Status send(std::string op) = 0;
  // Leave the group; nothing is delivered afterwards. Non-blocking.
  virtual void leave() = 0;
  virtual NodeId local_node() const = 0;
};

}  // namespace lunfs::dlm

// Test fixture: several lock spaces on one in-process bus, each with a client that records
// every callback, driven deterministically (run() orders and delivers until idle).
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <vector>

#include "dlm/inproc_transport.h"
#include "dlm/lockspace_impl.h"

namespace lunfs::dlm::testing {

struct Recorder : LockClient {
  struct Done {
    LockId id;
    Status status;
    Mode mode;
    Lvb lvb;
  };
  std::vector<Done> done;
  std::vector<std::pair<LockId, Mode>> basts;
  std::vector<std::pair<Departure, std::vector<HeldLock>>> recoveries;
  std::vector<std::string> events;  // "grant <id>", "recover <node>", ... in callback order
  std::vector<bool> quorum_changes;
  Status failed_with = Status::kOk;

  void completion(uint64_t, LockId id, Status st, Mode mode, const Lvb& lvb) override {
    done.push_back({id, st, mode, lvb});
    events.push_back("done " + std::to_string(id) + " " + std::string(status_name(st)));
  }
  void blocking(uint64_t, LockId id, Mode requested) override {
    basts.emplace_back(id, requested);
    events.push_back("bast " + std::to_string(id) + " " + std::string(mode_name(requested)));
  }
  void recover(const Departure& d, const std::vector<HeldLock>& held) override {
    recoveries.emplace_back(d, held);
    events.push_back("recover " + std::to_string(d.node));
  }
  void quorum(bool q) override { quorum_changes.push_back(q); }
  void failed(Status why) override { failed_with = why; }

  // The last departure of `node` this client was told of (a test failure if none).
  Departure departure_of(NodeId node) const {
    for (auto it = recoveries.rbegin(); it != recoveries.rend(); ++it)
      if (it->first.node == node) return it->first;
    ADD_FAILURE() << "no departure of node " << node << " reported";
    return {node, 0};
  }
  // The last completion of `id`, if any.
  const Done* last(LockId id) const {
    for (auto it = done.rbegin(); it != done.rend(); ++it)
      if (it->id == id) return &*it;
    return nullptr;
  }
};

class InprocCluster {
 public:
  explicit InprocCluster(uint32_t expected_votes) : bus_(expected_votes) {}

  LockSpaceImpl& add(NodeId id) {
    auto& n = nodes_[id];
    n.client = std::make_unique<Recorder>();
    n.ls = std::make_unique<LockSpaceImpl>(bus_.endpoint(id), n.client.get());
    EXPECT_EQ(n.ls->start(), Status::kOk);
    return *n.ls;
  }
  void remove(NodeId id) { nodes_.erase(id); }
  LockSpaceImpl& ls(NodeId id) { return *nodes_.at(id).ls; }
  Recorder& rec(NodeId id) { return *nodes_.at(id).client; }
  Bus& bus() { return bus_; }
  bool has(NodeId id) const { return nodes_.count(id); }

  // Order and deliver everything, in a fixed order (senders and receivers by id).
  void run() {
    for (;;) {
      bool any = false;
      for (NodeId s : bus_.senders()) any |= bus_.sequence(s);
      for (NodeId r : bus_.receivers()) any |= bus_.deliver(r) != 0;
      if (!any) return;
    }
  }

 private:
  struct Node {
    std::unique_ptr<Recorder> client;
    std::unique_ptr<LockSpaceImpl> ls;
  };
  Bus bus_;
  std::map<NodeId, Node> nodes_;  // destroyed before the bus
};

}  // namespace lunfs::dlm::testing

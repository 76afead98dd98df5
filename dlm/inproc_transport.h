// An in-process "Corosync" for tests: many nodes in one process exchanging operations with
// the guarantees of CPG (agreed order within a partition, membership changes at the same
// point of every member's stream, messages of a crashed sender either ordered before its
// leave or dropped) and a scheduler the test controls: it decides when each sender's
// message is ordered (reordering across senders, delaying a sender), when each node
// receives its next event (delaying a receiver), and it can crash nodes, partition the
// group and heal it. Quorum: a partition is quorate when it has more than half of
// `expected_votes` members.
//
// Either drive it by hand (sequence()/deliver()/step(), single-threaded, deterministic for
// a seed) or start_pump() a thread that does it, for tests with blocking callers.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "dlm/transport.h"

namespace lunfs::dlm {

class Bus {
 public:
  explicit Bus(uint32_t expected_votes);
  ~Bus();
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  // A transport for node `id`; start() joins the group (the largest live partition).
  std::unique_ptr<Transport> endpoint(NodeId id);

  // Orders the oldest unordered message of `sender` into its partition's stream.
  bool sequence(NodeId sender);
  // Delivers the next ordered event to `node`. Returns the event's id (equal on every node
  // that receives it), or 0 if it had none.
  uint64_t deliver(NodeId node);
  std::vector<NodeId> senders() const;    // nodes with unordered messages
  std::vector<NodeId> receivers() const;  // nodes with undelivered events
  // One random action: order a random sender's message or deliver to a random receiver.
  // Returns false when there is nothing left to do.
  bool step(std::mt19937_64& rng);

  // The node stops at once: unordered messages are lost, the others see it leave.
  void crash(NodeId node);
  // Splits the nodes in `side` from the rest of their partition.
  void partition(const std::vector<NodeId>& side);
  // Merges every partition into one.
  void heal();
  std::vector<NodeId> live() const;

  void start_pump(uint64_t seed);
  void stop_pump();

 private:
  friend class InprocTransport;
  struct Event {
    uint64_t id;
    NodeId from;
    std::shared_ptr<const std::string> msg;  // null: membership or quorum event
    std::shared_ptr<const Membership> conf;
    bool quorate;
  };
  struct Node {
    TransportListener* listener = nullptr;
    bool joined = false;
    bool delivering = false;
    int part = 0;
    std::deque<std::string> outbox;
    std::deque<Event> inbox;
  };

  void join(NodeId id, TransportListener* l);
  void send(NodeId id, std::string op);
  void leave(NodeId id);
  void detach(NodeId id);
  std::vector<NodeId> members_of(int part) const;
  void announce(int part, const std::vector<NodeId>& left, const std::vector<NodeId>& joined,
                const std::vector<NodeId>& to);
  void remove(NodeId id);
  bool sequence_locked(NodeId sender);
  void pump(uint64_t seed);

  const uint32_t expected_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<NodeId, Node> nodes_;
  uint64_t next_event_ = 1;
  int next_part_ = 1;
  bool pumping_ = false;
  std::thread pump_;
};

}  // namespace lunfs::dlm

// A deterministic in-process cluster lock service for tests: N nodes, one lock table, each
// node's LockManager a view of it. When a node asks for a mode that conflicts with what
// another node caches, the other node's demote callback runs at once (its GlockTable syncs,
// releases and invalidates) and then the request is granted, so a single-threaded test
// drives several FileSystem instances on one device exactly as a cluster would, with every
// choice (which holder is called back first, which lock memory pressure takes) drawn from
// one seeded PRNG. Compatibility is the DLM's for the modes the core uses: PR-PR and CW-CW
// share, PR-CW conflict, EX conflicts with everything.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "fs/core/glock.h"

namespace lunfs::testing {

class SimLockTable {
 public:
  explicit SimLockTable(uint64_t seed) : rng_(seed) {}

  static bool compatible(GlockMode a, GlockMode b) {
    if (a == GlockMode::kUnlocked || b == GlockMode::kUnlocked) return true;
    if (a == GlockMode::kExclusive || b == GlockMode::kExclusive) return false;
    return a == b;  // PR-PR, CW-CW; PR-CW conflict
  }

  // One node's view; the table outlives it.
  class Node final : public LockManager {
   public:
    Node(SimLockTable& table, uint32_t id) : table_(table), id_(id) {}
    void set_demote_callback(DemoteCallback cb) override { demote_ = std::move(cb); }
    Status acquire(const GlockName& name, GlockMode mode) override { return table_.acquire(id_, name, mode); }
    Status acquire_if_free(const GlockName& name, GlockMode mode) override {
      return table_.acquire_if_free(id_, name, mode);
    }
    Status release(const GlockName& name) override { return table_.release(id_, name); }
    std::string protocol() const override { return "sim"; }
    uint32_t id() const { return id_; }
    uint64_t acquires() const { return acquires_; }
    uint64_t demotes() const { return demotes_; }

   private:
    friend class SimLockTable;
    SimLockTable& table_;
    const uint32_t id_;
    DemoteCallback demote_;
    uint64_t acquires_ = 0;
    uint64_t demotes_ = 0;
  };

  Node& add_node() {
    nodes_.push_back(std::make_unique<Node>(*this, static_cast<uint32_t>(nodes_.size())));
    return *nodes_.back();
  }
  Node& node(uint32_t id) { return *nodes_.at(id); }

  // The mode `node` holds `name` in (kUnlocked when none).
  GlockMode held(uint32_t node, const GlockName& name) const {
    auto it = table_.find(name);
    if (it == table_.end()) return GlockMode::kUnlocked;
    auto h = it->second.find(node);
    return h == it->second.end() ? GlockMode::kUnlocked : h->second;
  }

  // Memory pressure: one held lock, chosen by the PRNG, is called back from its node as if
  // another node wanted it exclusively. False when no lock is held.
  bool demote_random(std::string* what = nullptr) {
    std::vector<std::pair<GlockName, uint32_t>> held_locks;
    for (const auto& [name, holders] : table_) {
      // An iopen glock is never called back: only NOQUEUE requests conflict with the
      // shared mode that marks an inode in use (glock.h, order rule 4).
      if (name.type == GlockType::kIopen) continue;
      for (const auto& [node, mode] : holders) held_locks.emplace_back(name, node);
    }
    if (held_locks.empty()) return false;
    auto [name, node] = held_locks[std::uniform_int_distribution<size_t>(0, held_locks.size() - 1)(rng_)];
    if (what) *what = "node " + std::to_string(node) + " gives back " + name.to_string();
    call_back(node, name, GlockMode::kExclusive);
    return true;
  }

  // `node` gives `name` back as if another node wanted it exclusively.
  void demote(uint32_t node, const GlockName& name) { call_back(node, name, GlockMode::kExclusive); }

  // Problems seen (a callback that did not release): the test fails on any.
  const std::vector<std::string>& violations() const { return violations_; }

 private:
  Status acquire(uint32_t id, const GlockName& name, GlockMode mode) {
    Node& self = *nodes_.at(id);
    self.acquires_ += 1;
    // The holders in conflict, called back in an order the seed decides.
    std::vector<uint32_t> conflicting;
    for (const auto& [node, held_mode] : table_[name]) {
      if (node != id && !compatible(held_mode, mode)) conflicting.push_back(node);
    }
    std::shuffle(conflicting.begin(), conflicting.end(), rng_);
    for (uint32_t node : conflicting) {
      call_back(node, name, mode);
      if (!compatible(held(node, name), mode)) {
        violations_.push_back("node " + std::to_string(node) + " kept " + name.to_string() +
                              " after its demote callback");
        return error(EDEADLK, "sim: node " + std::to_string(node) + " did not release " + name.to_string());
      }
    }
    table_[name][id] = mode;
    return Status::ok();
  }

  // A NOQUEUE request: granted only if no other node holds a conflicting mode; refused,
  // the holders in the way are called back once (NOQUEUEBAST), as the cluster manager does.
  Status acquire_if_free(uint32_t id, const GlockName& name, GlockMode mode) {
    nodes_.at(id)->acquires_ += 1;
    std::vector<uint32_t> in_the_way;
    for (const auto& [node, held_mode] : table_[name]) {
      if (node != id && !compatible(held_mode, mode)) in_the_way.push_back(node);
    }
    if (!in_the_way.empty()) {
      for (uint32_t node : in_the_way) call_back(node, name, mode);
      return error(EAGAIN, "sim: " + name.to_string() + " is held by node " + std::to_string(in_the_way.front()));
    }
    table_[name][id] = mode;
    return Status::ok();
  }

  Status release(uint32_t id, const GlockName& name) {
    auto it = table_.find(name);
    if (it == table_.end() || !it->second.erase(id)) {
      violations_.push_back("node " + std::to_string(id) + " released " + name.to_string() + " it did not hold");
      return error(EINVAL, "sim: release of a lock not held");
    }
    if (it->second.empty()) table_.erase(it);
    return Status::ok();
  }

  void call_back(uint32_t node, const GlockName& name, GlockMode wanted) {
    Node& n = *nodes_.at(node);
    n.demotes_ += 1;
    if (n.demote_) n.demote_(name, wanted);
  }

  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::map<GlockName, std::map<uint32_t, GlockMode>> table_;
  std::vector<std::string> violations_;
};

}  // namespace lunfs::testing

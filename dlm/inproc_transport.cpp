// The in-process bus (see inproc_transport.h).
#include "dlm/inproc_transport.h"

#include <algorithm>

namespace lunfs::dlm {

class InprocTransport final : public Transport {
 public:
  InprocTransport(Bus* bus, NodeId id) : bus_(bus), id_(id) {}
  ~InprocTransport() override { bus_->detach(id_); }
  Status start(TransportListener* l, std::chrono::milliseconds) override {
    bus_->join(id_, l);
    return Status::kOk;
  }
  Status send(std::string op) override {
    bus_->send(id_, std::move(op));
    return Status::kOk;
  }
  void leave() override { bus_->leave(id_); }
  NodeId local_node() const override { return id_; }

 private:
  Bus* bus_;
  NodeId id_;
};

Bus::Bus(uint32_t expected_votes) : expected_(expected_votes) {}

Bus::~Bus() { stop_pump(); }

std::unique_ptr<Transport> Bus::endpoint(NodeId id) {
  std::lock_guard g(mu_);
  nodes_[id];
  return std::make_unique<InprocTransport>(this, id);
}

std::vector<NodeId> Bus::members_of(int part) const {
  std::vector<NodeId> out;
  for (auto& [id, n] : nodes_)
    if (n.joined && n.part == part) out.push_back(id);
  return out;
}

void Bus::announce(int part, const std::vector<NodeId>& left, const std::vector<NodeId>& joined,
                   const std::vector<NodeId>& to) {
  auto conf = std::make_shared<Membership>(Membership{members_of(part), left, joined});
  bool quorate = conf->members.size() * 2 > expected_;
  uint64_t cid = next_event_++, qid = next_event_++;
  for (NodeId id : to) {
    nodes_[id].inbox.push_back(Event{cid, 0, nullptr, conf, false});
    nodes_[id].inbox.push_back(Event{qid, 0, nullptr, nullptr, quorate});
  }
  cv_.notify_all();
}

void Bus::join(NodeId id, TransportListener* l) {
  std::lock_guard g(mu_);
  std::map<int, size_t> sizes;
  for (auto& [nid, n] : nodes_)
    if (n.joined) ++sizes[n.part];
  int part = next_part_++;
  size_t best = 0;
  for (auto [p, size] : sizes)
    if (size > best) best = size, part = p;
  Node& n = nodes_[id];
  n.listener = l;
  n.joined = true;
  n.part = part;
  announce(part, {}, {id}, members_of(part));
}

void Bus::send(NodeId id, std::string op) {
  std::lock_guard g(mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end() || !it->second.joined) return;
  it->second.outbox.push_back(std::move(op));
  cv_.notify_all();
}

void Bus::remove(NodeId id) {
  Node& n = nodes_[id];
  if (!n.joined) return;
  n.joined = false;
  n.outbox.clear();
  n.inbox.clear();
  announce(n.part, {id}, {}, members_of(n.part));
}

void Bus::leave(NodeId id) {
  std::lock_guard g(mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return;
  while (sequence_locked(id)) {}  // a clean leave: what it sent is ordered before it goes
  remove(id);
}

void Bus::detach(NodeId id) {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return !nodes_[id].delivering; });
  remove(id);
  nodes_.erase(id);
}

void Bus::crash(NodeId id) {
  std::lock_guard g(mu_);
  if (nodes_.count(id)) remove(id);
}

void Bus::partition(const std::vector<NodeId>& side) {
  std::lock_guard g(mu_);
  std::map<int, int> split;  // old partition -> new partition for `side`
  for (NodeId id : side) {
    auto it = nodes_.find(id);
    if (it == nodes_.end() || !it->second.joined) continue;
    auto [s, fresh] = split.try_emplace(it->second.part, next_part_);
    if (fresh) ++next_part_;
    it->second.part = s->second;
  }
  for (auto [old_part, new_part] : split) {
    auto a = members_of(new_part), b = members_of(old_part);
    if (!b.empty()) announce(old_part, a, {}, b);
    announce(new_part, b, {}, a);
  }
}

void Bus::heal() {
  std::lock_guard g(mu_);
  std::map<int, std::vector<NodeId>> parts;
  for (auto& [id, n] : nodes_)
    if (n.joined) parts[n.part].push_back(id);
  if (parts.size() < 2) return;
  int into = parts.begin()->first;
  for (auto& [id, n] : nodes_)
    if (n.joined) n.part = into;
  for (auto& [p, ms] : parts) {
    std::vector<NodeId> others;
    for (auto& [q, ns] : parts)
      if (q != p) others.insert(others.end(), ns.begin(), ns.end());
    std::sort(others.begin(), others.end());
    announce(into, {}, others, ms);
  }
}

std::vector<NodeId> Bus::live() const {
  std::lock_guard g(mu_);
  std::vector<NodeId> out;
  for (auto& [id, n] : nodes_)
    if (n.joined) out.push_back(id);
  return out;
}

bool Bus::sequence_locked(NodeId sender) {
  Node& s = nodes_[sender];
  if (!s.joined || s.outbox.empty()) return false;
  auto msg = std::make_shared<const std::string>(std::move(s.outbox.front()));
  s.outbox.pop_front();
  uint64_t id = next_event_++;
  for (NodeId m : members_of(s.part)) nodes_[m].inbox.push_back(Event{id, sender, msg, nullptr, false});
  cv_.notify_all();
  return true;
}

bool Bus::sequence(NodeId sender) {
  std::lock_guard g(mu_);
  return sequence_locked(sender);
}

uint64_t Bus::deliver(NodeId node) {
  std::unique_lock lk(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end() || !it->second.joined || it->second.inbox.empty() ||
      it->second.delivering)
    return 0;
  Node& n = it->second;
  Event e = std::move(n.inbox.front());
  n.inbox.pop_front();
  n.delivering = true;
  TransportListener* l = n.listener;
  lk.unlock();
  if (e.msg) l->on_deliver(e.from, *e.msg);
  else if (e.conf) l->on_membership(*e.conf);
  else l->on_quorum(e.quorate);
  lk.lock();
  nodes_[node].delivering = false;
  cv_.notify_all();
  return e.id;
}

std::vector<NodeId> Bus::senders() const {
  std::lock_guard g(mu_);
  std::vector<NodeId> out;
  for (auto& [id, n] : nodes_)
    if (n.joined && !n.outbox.empty()) out.push_back(id);
  return out;
}

std::vector<NodeId> Bus::receivers() const {
  std::lock_guard g(mu_);
  std::vector<NodeId> out;
  for (auto& [id, n] : nodes_)
    if (n.joined && !n.inbox.empty() && !n.delivering) out.push_back(id);
  return out;
}

bool Bus::step(std::mt19937_64& rng) {
  auto s = senders(), r = receivers();
  if (s.empty() && r.empty()) return false;
  size_t pick = std::uniform_int_distribution<size_t>(0, s.size() + r.size() - 1)(rng);
  if (pick < s.size()) sequence(s[pick]);
  else deliver(r[pick - s.size()]);
  return true;
}

void Bus::start_pump(uint64_t seed) {
  std::lock_guard g(mu_);
  if (pumping_) return;
  pumping_ = true;
  pump_ = std::thread([this, seed] { pump(seed); });
}

void Bus::stop_pump() {
  {
    std::lock_guard g(mu_);
    if (!pumping_) return;
    pumping_ = false;
    cv_.notify_all();
  }
  pump_.join();
}

void Bus::pump(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::unique_lock lk(mu_);
  while (pumping_) {
    auto busy = [&] {
      for (auto& [id, n] : nodes_)
        if (n.joined && (!n.outbox.empty() || (!n.inbox.empty() && !n.delivering))) return true;
      return false;
    };
    cv_.wait(lk, [&] { return !pumping_ || busy(); });
    if (!pumping_) break;
    lk.unlock();
    step(rng);
    lk.lock();
  }
}

}  // namespace lunfs::dlm

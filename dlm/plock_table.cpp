// The byte-range lock table (see plock_table.h for the rules).
#include "dlm/plock_table.h"

#include <algorithm>
#include <cerrno>
#include <set>

#include "dlm/wire.h"

namespace lunfs::dlm {

namespace {

bool overlaps(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2) { return s1 <= e2 && s2 <= e1; }

bool sorted_before(const Plock& a, const Plock& b) {
  return a.start != b.start ? a.start < b.start : a.owner < b.owner;
}

const char* type_name(PlockType t) {
  switch (t) {
    case PlockType::kRead: return "read";
    case PlockType::kWrite: return "write";
    case PlockType::kUnlock: break;
  }
  return "unlock";
}

}  // namespace

std::string encode(const PlockOp& op) {
  Writer w;
  w.u8(uint8_t(op.cmd)), w.u8(uint8_t(op.cls)), w.u8(uint8_t(op.type)), w.u8(op.wait);
  w.u32(op.pid), w.u64(op.ino), w.u64(op.owner), w.u64(op.start), w.u64(op.end), w.u64(op.req);
  return w.take();
}

std::optional<PlockOp> decode_plock(std::string_view bytes) {
  Reader r(bytes);
  PlockOp op;
  uint8_t cmd, cls, type, wait;
  if (!r.u8(cmd) || !r.u8(cls) || !r.u8(type) || !r.u8(wait) || !r.u32(op.pid) || !r.u64(op.ino) ||
      !r.u64(op.owner) || !r.u64(op.start) || !r.u64(op.end) || !r.u64(op.req) || !r.done())
    return std::nullopt;
  if (cmd < uint8_t(PlockCmd::kLock) || cmd > uint8_t(PlockCmd::kRelease) || cls > 1 ||
      type > uint8_t(PlockType::kUnlock) || wait > 1 || op.start > op.end)
    return std::nullopt;
  op.cmd = PlockCmd(cmd), op.cls = PlockClass(cls), op.type = PlockType(type), op.wait = wait;
  return op;
}

void PlockTable::report(NodeId node, uint64_t req, int err, std::vector<PlockResult>& done,
                        std::optional<Plock> conflict) const {
  if (node == self_) done.push_back({req, err, std::move(conflict)});
}

void PlockTable::forget_if_empty(uint64_t ino) {
  auto it = inodes_.find(ino);
  if (it != inodes_.end() && it->second.empty()) inodes_.erase(it);
}

const Plock* PlockTable::conflict(const Inode& in, PlockClass cls, PlockOwner who, uint64_t start, uint64_t end,
                                  PlockType type) const {
  for (const Plock& l : in.granted[int(cls)])
    if (l.owner != who && overlaps(l.start, l.end, start, end) &&
        (type == PlockType::kWrite || l.type == PlockType::kWrite))
      return &l;
  return nullptr;
}

void PlockTable::set_range(std::vector<Plock>& g, PlockOwner who, uint32_t pid, uint64_t start, uint64_t end,
                           PlockType type) {
  std::vector<Plock> mine, out;
  for (const Plock& l : g) (l.owner == who ? mine : out).push_back(l);
  std::vector<Plock> kept;
  for (const Plock& l : mine) {
    if (!overlaps(l.start, l.end, start, end)) {
      kept.push_back(l);
      continue;
    }
    if (l.start < start) kept.push_back({who, l.pid, l.start, start - 1, l.type});
    if (l.end > end) kept.push_back({who, l.pid, end + 1, l.end, l.type});
  }
  if (type != PlockType::kUnlock) kept.push_back({who, pid, start, end, type});
  std::sort(kept.begin(), kept.end(), sorted_before);
  // The owner's ranges are disjoint now; neighbours of one type become one range.
  std::vector<Plock> merged;
  for (const Plock& l : kept) {
    Plock* last = merged.empty() ? nullptr : &merged.back();
    if (last && last->type == l.type && last->end != kPlockEof && last->end + 1 == l.start) {
      last->end = l.end;
      if (type != PlockType::kUnlock) last->pid = pid;
    } else {
      merged.push_back(l);
    }
  }
  out.insert(out.end(), merged.begin(), merged.end());
  std::sort(out.begin(), out.end(), sorted_before);
  g = std::move(out);
}

// A request would wait for the owners of the locks in its way; each of those that waits
// itself waits for the owners in its own way, and so on. A path back to the requester is a
// deadlock. Only POSIX owners wait on each other here: flock requests never deadlock-check
// (Linux does not either), nor do the requests they wait for.
bool PlockTable::deadlocks(PlockOwner requester, const Inode& in, const PlockOp& op) const {
  auto in_the_way = [&](const Inode& i, PlockOwner who, const PlockOp& o, std::vector<PlockOwner>& out) {
    for (const Plock& l : i.granted[int(PlockClass::kPosix)])
      if (l.owner != who && overlaps(l.start, l.end, o.start, o.end) &&
          (o.type == PlockType::kWrite || l.type == PlockType::kWrite))
        out.push_back(l.owner);
  };
  std::vector<PlockOwner> frontier;
  in_the_way(in, requester, op, frontier);
  std::set<PlockOwner> seen;
  while (!frontier.empty()) {
    PlockOwner o = frontier.back();
    frontier.pop_back();
    if (o == requester) return true;
    if (!seen.insert(o).second) continue;
    for (const auto& [ino, other] : inodes_)
      for (const Waiting& w : other.waiting)
        if (w.op.cls == PlockClass::kPosix && PlockOwner{w.node, w.op.owner} == o) in_the_way(other, o, w.op, frontier);
  }
  return false;
}

void PlockTable::retry_waiters(uint64_t ino, std::vector<PlockResult>& done) {
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return;
  Inode& in = it->second;
  // A grant only adds locks, so it cannot free a waiter already passed over: one pass.
  for (auto w = in.waiting.begin(); w != in.waiting.end();) {
    const PlockOwner who{w->node, w->op.owner};
    if (conflict(in, w->op.cls, who, w->op.start, w->op.end, w->op.type)) {
      ++w;
      continue;
    }
    set_range(in.granted[int(w->op.cls)], who, w->op.pid, w->op.start, w->op.end, w->op.type);
    report(w->node, w->op.req, 0, done);
    w = in.waiting.erase(w);
  }
}

void PlockTable::lock(NodeId from, const PlockOp& op, bool quorate, std::vector<PlockResult>& done) {
  const PlockOwner who{from, op.owner};
  Inode& in = inodes_[op.ino];
  auto& granted = in.granted[int(op.cls)];
  if (op.type == PlockType::kUnlock) {
    set_range(granted, who, op.pid, op.start, op.end, PlockType::kUnlock);
    report(from, op.req, 0, done);
    if (quorate) retry_waiters(op.ino, done);
    return forget_if_empty(op.ino);
  }
  if (!quorate) {
    report(from, op.req, ENOLCK, done);
    return forget_if_empty(op.ino);
  }
  if (op.cls == PlockClass::kFlock) {
    auto held = std::find_if(granted.begin(), granted.end(), [&](const Plock& l) { return l.owner == who; });
    if (held != granted.end() && held->type == op.type) return report(from, op.req, 0, done);
    if (held != granted.end()) {
      // Linux's flock_lock_inode: a conversion gives up the old lock before it may wait.
      granted.erase(held);
      retry_waiters(op.ino, done);
    }
  }
  if (!conflict(in, op.cls, who, op.start, op.end, op.type)) {
    set_range(granted, who, op.pid, op.start, op.end, op.type);
    return report(from, op.req, 0, done);
  }
  if (!op.wait) {
    report(from, op.req, EAGAIN, done);
    return forget_if_empty(op.ino);
  }
  if (op.cls == PlockClass::kPosix && deadlocks(who, in, op)) {
    report(from, op.req, EDEADLK, done);
    return forget_if_empty(op.ino);
  }
  in.waiting.push_back({from, op});
}

void PlockTable::apply(NodeId from, const PlockOp& op, bool quorate, std::vector<PlockResult>& done) {
  switch (op.cmd) {
    case PlockCmd::kLock:
      return lock(from, op, quorate, done);
    case PlockCmd::kGet: {
      auto it = inodes_.find(op.ino);
      const Plock* c = it == inodes_.end() || op.type == PlockType::kUnlock
                           ? nullptr
                           : conflict(it->second, op.cls, {from, op.owner}, op.start, op.end, op.type);
      return report(from, op.req, 0, done, c ? std::optional<Plock>(*c) : std::nullopt);
    }
    case PlockCmd::kCancel:
      for (auto& [ino, in] : inodes_) {
        auto w = std::find_if(in.waiting.begin(), in.waiting.end(),
                              [&](const Waiting& x) { return x.node == from && x.op.req == op.req; });
        if (w == in.waiting.end()) continue;
        in.waiting.erase(w);
        report(from, op.req, EINTR, done);
        return forget_if_empty(ino);
      }
      return;  // decided already: its result went out before this cancel
    case PlockCmd::kRelease: {
      auto it = inodes_.find(op.ino);
      if (it != inodes_.end()) {
        auto& g = it->second.granted[int(op.cls)];
        const PlockOwner who{from, op.owner};
        std::erase_if(g, [&](const Plock& l) { return l.owner == who; });
        if (quorate) retry_waiters(op.ino, done);
        forget_if_empty(op.ino);
      }
      return report(from, op.req, 0, done);
    }
  }
}

void PlockTable::drop_node(NodeId node) {
  std::vector<uint64_t> touched;
  for (auto& [ino, in] : inodes_) {
    for (auto& g : in.granted) std::erase_if(g, [&](const Plock& l) { return l.owner.node == node; });
    std::erase_if(in.waiting, [&](const Waiting& w) { return w.node == node; });
    touched.push_back(ino);
  }
  for (uint64_t ino : touched) forget_if_empty(ino);
}

void PlockTable::regain_quorum(std::vector<PlockResult>& done) {
  std::vector<uint64_t> inos;
  for (auto& [ino, in] : inodes_)
    if (!in.waiting.empty()) inos.push_back(ino);
  for (uint64_t ino : inos) retry_waiters(ino, done);
}

std::vector<Plock> PlockTable::locks(uint64_t ino, PlockClass cls) const {
  auto it = inodes_.find(ino);
  return it == inodes_.end() ? std::vector<Plock>{} : it->second.granted[int(cls)];
}

size_t PlockTable::waiting(uint64_t ino) const {
  auto it = inodes_.find(ino);
  return it == inodes_.end() ? 0 : it->second.waiting.size();
}

bool PlockTable::has(uint64_t ino, PlockClass cls, PlockOwner owner) const {
  auto it = inodes_.find(ino);
  if (it == inodes_.end()) return false;
  for (const Plock& l : it->second.granted[int(cls)])
    if (l.owner == owner) return true;
  for (const Waiting& w : it->second.waiting)
    if (w.op.cls == cls && PlockOwner{w.node, w.op.owner} == owner) return true;
  return false;
}

std::string PlockTable::encode() const {
  Writer w;
  w.u32(uint32_t(inodes_.size()));
  for (const auto& [ino, in] : inodes_) {
    w.u64(ino);
    for (const auto& g : in.granted) {
      w.u32(uint32_t(g.size()));
      for (const Plock& l : g)
        w.u32(l.owner.node), w.u64(l.owner.owner), w.u32(l.pid), w.u64(l.start), w.u64(l.end), w.u8(uint8_t(l.type));
    }
    w.u32(uint32_t(in.waiting.size()));
    for (const Waiting& x : in.waiting) w.u32(x.node), w.bytes(dlm::encode(x.op));
  }
  return w.take();
}

bool PlockTable::decode(std::string_view blob) {
  inodes_.clear();
  Reader r(blob);
  uint32_t n;
  if (!r.u32(n) || n > blob.size()) return false;
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t ino;
    if (!r.u64(ino) || inodes_.count(ino)) return false;
    Inode& in = inodes_[ino];
    for (auto& g : in.granted) {
      uint32_t nl;
      if (!r.u32(nl) || nl > blob.size()) return false;
      for (uint32_t j = 0; j < nl; ++j) {
        Plock l;
        uint8_t type;
        if (!r.u32(l.owner.node) || !r.u64(l.owner.owner) || !r.u32(l.pid) || !r.u64(l.start) || !r.u64(l.end) ||
            !r.u8(type) || type > uint8_t(PlockType::kWrite) || l.start > l.end)
          return false;
        l.type = PlockType(type);
        g.push_back(l);
      }
    }
    uint32_t nw;
    if (!r.u32(nw) || nw > blob.size()) return false;
    for (uint32_t j = 0; j < nw; ++j) {
      Waiting x{};
      std::string op;
      if (!r.u32(x.node) || !r.bytes(op)) return false;
      auto decoded = decode_plock(op);
      if (!decoded) return false;
      x.op = *decoded;
      in.waiting.push_back(x);
    }
    if (in.empty()) return false;
  }
  std::string why;
  return r.done() && check(&why);
}

std::string PlockTable::dump() const {
  std::string out = "plock-inodes " + std::to_string(inodes_.size()) + "\n";
  auto line = [](const char* what, uint64_t ino, PlockClass cls, NodeId node, uint64_t owner, uint32_t pid,
                 uint64_t start, uint64_t end, PlockType type) {
    std::string s = std::string("plock ") + what + " inode " + std::to_string(ino) +
                    (cls == PlockClass::kFlock ? " flock" : " posix") + " node " + std::to_string(node) + " owner " +
                    std::to_string(owner) + " pid " + std::to_string(pid) + " " + std::to_string(start) + "-" +
                    (end == kPlockEof ? std::string("eof") : std::to_string(end)) + " " + type_name(type) + "\n";
    return s;
  };
  for (const auto& [ino, in] : inodes_) {
    for (int c = 0; c < 2; ++c)
      for (const Plock& l : in.granted[c])
        out += line("granted", ino, PlockClass(c), l.owner.node, l.owner.owner, l.pid, l.start, l.end, l.type);
    for (const Waiting& w : in.waiting)
      out += line("waiting", ino, w.op.cls, w.node, w.op.owner, w.op.pid, w.op.start, w.op.end, w.op.type);
  }
  return out;
}

bool PlockTable::check(std::string* why) const {
  for (const auto& [ino, in] : inodes_) {
    if (in.empty()) return *why = "empty inode entry " + std::to_string(ino), false;
    for (const auto& g : in.granted) {
      if (!std::is_sorted(g.begin(), g.end(), sorted_before)) return *why = "unsorted ranges", false;
      for (size_t i = 0; i < g.size(); ++i)
        for (size_t j = i + 1; j < g.size(); ++j) {
          const Plock &a = g[i], &b = g[j];
          const bool touch = overlaps(a.start, a.end, b.start, b.end) ||
                             (a.end != kPlockEof && a.end + 1 == b.start) || (b.end != kPlockEof && b.end + 1 == a.start);
          if (a.owner == b.owner && overlaps(a.start, a.end, b.start, b.end))
            return *why = "overlapping ranges of one owner on inode " + std::to_string(ino), false;
          if (a.owner == b.owner && touch && a.type == b.type)
            return *why = "unmerged ranges of one owner on inode " + std::to_string(ino), false;
          if (a.owner != b.owner && overlaps(a.start, a.end, b.start, b.end) &&
              (a.type == PlockType::kWrite || b.type == PlockType::kWrite))
            return *why = "conflicting locks granted on inode " + std::to_string(ino), false;
        }
    }
  }
  return true;
}

}  // namespace lunfs::dlm

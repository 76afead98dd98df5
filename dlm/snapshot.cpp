// Canonical encoding of the replicated table (handed to joiners, and compared across nodes
// by the simulation), and the human-readable dump behind `lunfs locks`.
#include <algorithm>
#include <cstdio>

#include "dlm/lock_table.h"

namespace lunfs::dlm {

namespace {

std::vector<const Resource*> sorted(const std::unordered_map<std::string, Resource>& rs) {
  std::vector<const Resource*> out;
  for (const auto& [name, r] : rs) out.push_back(&r);
  std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return *a->name < *b->name; });
  return out;
}

constexpr uint8_t kNoQueueBit = 1, kBastBit = 2, kOrphanBit = 4;

}  // namespace

std::string LockTable::encode() const {
  Writer w;
  w.u8(quorate_);
  w.u64(epoch_);
  w.u64(checkpoint_);
  w.u32(orphan_gen_);
  w.u32(uint32_t(members_.size()));
  for (NodeId n : members_) w.u32(n);
  std::vector<std::pair<NodeId, Joiner>> uns(unsynced_.begin(), unsynced_.end());
  std::sort(uns.begin(), uns.end(), [](auto& a, auto& b) { return a.first < b.first; });
  w.u32(uint32_t(uns.size()));
  for (auto& [n, j] : uns) w.u32(n), w.u64(j.nonce), w.u32(j.k);
  w.u32(uint32_t(pending_recovery_.size()));
  for (const auto& [d, first_gen] : pending_recovery_) w.u32(d.node), w.u32(d.id), w.u32(first_gen);
  auto rs = sorted(resources_);
  w.u32(uint32_t(rs.size()));
  for (const Resource* r : rs) {
    w.bytes(*r->name);
    w.u8(r->lvb_valid);
    w.raw(r->lvb.data(), r->lvb.size());
    for (const LockQueue* q : {&r->granted, &r->convert, &r->wait}) {
      uint32_t n = 0;
      for (const Lock* l = q->front(); l; l = q->after(l)) ++n;
      w.u32(n);
      for (const Lock* l = q->front(); l; l = q->after(l)) {
        w.u64(l->seq), w.u32(l->node), w.u32(l->gen), w.u64(l->cookie);
        w.u8(uint8_t(l->grmode)), w.u8(uint8_t(l->rqmode));
        w.u8(uint8_t((l->noqueue ? kNoQueueBit : 0) | (l->bast_sent ? kBastBit : 0) |
                     (l->orphan ? kOrphanBit : 0)));
      }
    }
  }
  w.bytes(plocks_.encode());
  return w.take();
}

bool LockTable::decode(std::string_view blob) {
  locks_.clear();
  resources_.clear();
  members_.clear();
  unsynced_.clear();
  pending_recovery_.clear();
  Reader rd(blob);
  uint8_t q;
  uint32_t n;
  if (!rd.u8(q) || !rd.u64(epoch_) || !rd.u64(checkpoint_) || !rd.u32(orphan_gen_) || !rd.u32(n) ||
      n > blob.size())
    return false;
  quorate_ = q;
  for (uint32_t i = 0; i < n; ++i) {
    NodeId id;
    if (!rd.u32(id)) return false;
    members_.push_back(id);
  }
  if (!rd.u32(n) || n > blob.size()) return false;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t id, k;
    uint64_t nonce;
    if (!rd.u32(id) || !rd.u64(nonce) || !rd.u32(k)) return false;
    unsynced_[id] = {nonce, k};
  }
  if (!rd.u32(n) || n > blob.size()) return false;
  for (uint32_t i = 0; i < n; ++i) {
    Departure d;
    uint32_t first_gen;
    if (!rd.u32(d.node) || !rd.u32(d.id) || !rd.u32(first_gen) || first_gen > d.id) return false;
    pending_recovery_[d] = first_gen;
  }
  uint32_t nres;
  if (!rd.u32(nres) || nres > blob.size()) return false;
  for (uint32_t i = 0; i < nres; ++i) {
    std::string name;
    uint8_t valid;
    if (!rd.bytes(name) || resources_.count(name)) return false;
    Resource& r = resource(name);
    if (!rd.u8(valid) || !rd.raw(r.lvb.data(), r.lvb.size())) return false;
    r.lvb_valid = valid;
    const std::pair<LockQueue*, Queue> qs[] = {
        {&r.granted, Queue::kGranted}, {&r.convert, Queue::kConvert}, {&r.wait, Queue::kWait}};
    for (auto [queue, tag] : qs) {
      uint32_t nl;
      if (!rd.u32(nl) || nl > blob.size()) return false;
      for (uint32_t j = 0; j < nl; ++j) {
        Key key{};
        uint64_t cookie;
        uint8_t gr, rq, bits;
        if (!rd.u64(key.seq) || !rd.u32(key.node) || !rd.u32(key.gen) || !rd.u64(cookie) ||
            !rd.u8(gr) || !rd.u8(rq) || !rd.u8(bits) || gr >= kModeCount || rq >= kModeCount)
          return false;
        auto [it, fresh] = locks_.try_emplace(key);
        if (!fresh) return false;
        Lock* l = &it->second;
        *l = Lock{};
        l->res = &r, l->cookie = cookie, l->seq = key.seq, l->node = key.node, l->gen = key.gen;
        l->grmode = Mode(gr), l->rqmode = Mode(rq), l->queue = tag;
        l->noqueue = bits & kNoQueueBit, l->bast_sent = bits & kBastBit;
        l->orphan = bits & kOrphanBit;
        queue->push_back(l);
        ++r.nlocks;
      }
    }
    if (r.unused()) return false;
  }
  std::string plocks;
  return rd.bytes(plocks) && plocks_.decode(plocks) && rd.done();
}

namespace {

std::string printable(std::string_view name) {
  std::string out;
  for (unsigned char c : name) {
    if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
      out += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace

std::string LockTable::dump() const {
  std::string out = "quorate " + std::to_string(quorate_) + "\nmembers";
  // Appended piece by piece: `" " + std::to_string(n)` trips a -Wrestrict false positive in
  // GCC 12 at -O3 (GCC bug 105329), which broke Release builds.
  for (NodeId n : members_) out.append(" ").append(std::to_string(n));
  out += "\npending-recovery";
  for (const auto& [d, first_gen] : pending_recovery_)
    out.append(" ").append(std::to_string(d.node)).append("/").append(std::to_string(d.id));
  out += "\nresources " + std::to_string(resources_.size()) + " locks " +
         std::to_string(locks_.size()) + "\n";
  for (const Resource* r : sorted(resources_)) {
    out += "resource \"" + printable(*r->name) + "\" lvb ";
    if (r->lvb_valid) {
      for (uint8_t b : r->lvb) {
        char buf[3];
        std::snprintf(buf, sizeof buf, "%02x", b);
        out += buf;
      }
    } else {
      out += "invalid";
    }
    out += "\n";
    const std::pair<const LockQueue*, const char*> qs[] = {
        {&r->granted, "granted"}, {&r->convert, "convert"}, {&r->wait, "waiting"}};
    for (auto [q, label] : qs)
      for (const Lock* l = q->front(); l; l = q->after(l)) {
        out += std::string("  ") + label + " node " + std::to_string(l->node) + " id " +
               std::to_string(l->seq) + " " + std::string(mode_name(l->grmode));
        if (l->queue != Queue::kGranted) out += "->" + std::string(mode_name(l->rqmode));
        if (l->orphan) out += " orphan";
        out += "\n";
      }
  }
  return out + plocks_.dump();
}

}  // namespace lunfs::dlm

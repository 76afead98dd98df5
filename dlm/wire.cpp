// Encoding of lock-space operations (see wire.h).
#include "dlm/wire.h"

#include <cstring>

namespace lunfs::dlm {

void Writer::u32(uint32_t v) {
  for (int i = 0; i < 4; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
}
void Writer::u64(uint64_t v) {
  for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
}
void Writer::bytes(std::string_view s) {
  u32(static_cast<uint32_t>(s.size()));
  out_.append(s);
}

bool Reader::raw(void* p, size_t n) {
  if (in_.size() < n) return false;
  std::memcpy(p, in_.data(), n);
  in_.remove_prefix(n);
  return true;
}
bool Reader::u8(uint8_t& v) { return raw(&v, 1); }
bool Reader::u32(uint32_t& v) {
  uint8_t b[4];
  if (!raw(b, 4)) return false;
  v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(b[i]) << (8 * i);
  return true;
}
bool Reader::u64(uint64_t& v) {
  uint8_t b[8];
  if (!raw(b, 8)) return false;
  v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t(b[i]) << (8 * i);
  return true;
}
bool Reader::bytes(std::string& s) {
  uint32_t n;
  if (!u32(n) || in_.size() < n) return false;
  s.assign(in_.data(), n);
  in_.remove_prefix(n);
  return true;
}

namespace {

void put_lvb(Writer& w, const std::optional<LvbBytes>& lvb) {
  w.u8(lvb ? 1 : 0);
  if (lvb) w.raw(lvb->data(), lvb->size());
}

bool get_lvb(Reader& r, std::optional<LvbBytes>& lvb) {
  uint8_t has;
  if (!r.u8(has) || has > 1) return false;
  if (!has) return true;
  lvb.emplace();
  return r.raw(lvb->data(), lvb->size());
}

bool get_mode(Reader& r, Mode& m) {
  uint8_t v;
  if (!r.u8(v) || v >= kModeCount) return false;
  m = Mode(v);
  return true;
}

}  // namespace

std::string encode(const Op& op) {
  Writer w;
  w.u8(static_cast<uint8_t>(op.type));
  switch (op.type) {
    case OpType::kRequest:
      w.u64(op.seq), w.u8(uint8_t(op.mode)), w.u32(op.flags), w.u64(op.cookie), w.bytes(op.name);
      break;
    case OpType::kConvert:
      w.u64(op.seq), w.u8(uint8_t(op.mode)), w.u32(op.flags), put_lvb(w, op.lvb);
      break;
    case OpType::kUnlock:
      w.u64(op.seq), put_lvb(w, op.lvb);
      break;
    case OpType::kCancel:
    case OpType::kHello:
      w.u64(op.seq);
      break;
    case OpType::kQuorum:
      w.u64(op.seq), w.u32(op.flags);
      break;
    case OpType::kRecoveryDone:
      w.u32(op.node), w.u32(op.departure);
      break;
    case OpType::kDigest:
      w.u64(op.seq), w.u32(op.flags), w.u64(op.cookie);
      break;
    case OpType::kPlock:
      w.bytes(op.blob);
      break;
    case OpType::kSnapshot:
      w.u32(static_cast<uint32_t>(op.targets.size()));
      for (auto t : op.targets) w.u32(t.node), w.u64(t.nonce), w.u32(t.k);
      w.bytes(op.blob);
      break;
  }
  return w.take();
}

std::optional<Op> decode(std::string_view bytes) {
  Reader r(bytes);
  Op op;
  uint8_t type;
  if (!r.u8(type)) return std::nullopt;
  op.type = OpType(type);
  bool ok = false;
  switch (op.type) {
    case OpType::kRequest:
      ok = r.u64(op.seq) && get_mode(r, op.mode) && r.u32(op.flags) && r.u64(op.cookie) &&
           r.bytes(op.name);
      break;
    case OpType::kConvert:
      ok = r.u64(op.seq) && get_mode(r, op.mode) && r.u32(op.flags) && get_lvb(r, op.lvb);
      break;
    case OpType::kUnlock:
      ok = r.u64(op.seq) && get_lvb(r, op.lvb);
      break;
    case OpType::kCancel:
    case OpType::kHello:
      ok = r.u64(op.seq);
      break;
    case OpType::kQuorum:
      ok = r.u64(op.seq) && r.u32(op.flags);
      break;
    case OpType::kRecoveryDone:
      ok = r.u32(op.node) && r.u32(op.departure);
      break;
    case OpType::kDigest:
      ok = r.u64(op.seq) && r.u32(op.flags) && r.u64(op.cookie);
      break;
    case OpType::kPlock:
      ok = r.bytes(op.blob);
      break;
    case OpType::kSnapshot: {
      uint32_t n;
      ok = r.u32(n) && n <= bytes.size() / 16;
      for (uint32_t i = 0; ok && i < n; ++i) {
        SnapshotTarget t{};
        ok = r.u32(t.node) && r.u64(t.nonce) && r.u32(t.k);
        op.targets.push_back(t);
      }
      ok = ok && r.bytes(op.blob);
      break;
    }
    default:
      return std::nullopt;
  }
  if (!ok || !r.done()) return std::nullopt;
  return op;
}

}  // namespace lunfs::dlm

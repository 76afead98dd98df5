// The lock-space protocol: the operations every node multicasts in agreed order, and their
// byte encoding. A received operation is untrusted input: decode() checks every length.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dlm/types.h"

namespace lunfs::dlm {

enum class OpType : uint8_t {
  kRequest = 1,   // new lock: seq, name, mode, flags, cookie
  kConvert,       // seq, mode, flags, optional LVB (written when leaving PW/EX)
  kUnlock,        // seq, optional LVB
  kCancel,        // seq
  kRecoveryDone,  // node, departure: the FS has recovered that departure; release its locks
  kHello,         // seq = nonce: a joiner announces this incarnation (see lockspace.cpp)
  kSnapshot,      // blob: the table for joiners `targets` (see SnapshotTarget)
  kQuorum,        // flags = quorate, seq = epoch; only the lowest member's (lock_table.h)
  kDigest,        // seq = checkpoint, cookie = the sender's table digest right after it,
                  // flags = its members' digest: replicas compare
                  // (lockspace.cpp, "Divergence")
  kPlock,         // blob: a PlockOp (plock_table.h) for the byte-range lock table
};

// A snapshot is the sender's table right after the joiner's kHello (k = 0) or after the
// k-th membership change following it. The nonce tells incarnations of a node apart.
struct SnapshotTarget {
  NodeId node;
  uint64_t nonce;
  uint32_t k;
  bool operator<(const SnapshotTarget& o) const { return node < o.node; }
};

struct Op {
  OpType type = OpType::kRequest;
  uint64_t seq = 0;
  Mode mode = Mode::NL;
  uint32_t flags = 0;
  uint64_t cookie = 0;
  std::string name;
  std::optional<LvbBytes> lvb;
  NodeId node = 0;
  uint32_t departure = 0;  // kRecoveryDone: which departure of `node` (Departure::id)
  std::vector<SnapshotTarget> targets;
  std::string blob;
};

std::string encode(const Op& op);
std::optional<Op> decode(std::string_view bytes);

// Little-endian byte writer/reader shared by the op codec and the table snapshot.
class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v);
  void u64(uint64_t v);
  void bytes(std::string_view s);  // length-prefixed
  void raw(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool u8(uint8_t& v);
  bool u32(uint32_t& v);
  bool u64(uint64_t& v);
  bool bytes(std::string& s);
  bool raw(void* p, size_t n);
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

}  // namespace lunfs::dlm

// The byte-range lock table behind fcntl (POSIX and OFD) and flock locks on lunfs files
// (decision 12): a deterministic state machine, like LockTable, that every member of a lock
// space applies to the same agreed-order stream (OpType::kPlock), so that every node grants,
// refuses, queues and wakes the same requests at the same point. A single-host mount drives
// one table directly, without messages (fuse/plocks.h).
//
// Rules (Linux's fs/locks.c semantics, owners being (node, kernel lock_owner)):
//  - POSIX and OFD locks share one range space per inode (class kPosix); flock locks are a
//    class of their own (whole file, one per owner) and never conflict with fcntl locks;
//  - a lock conflicts with another owner's overlapping lock when either is a write lock;
//  - an owner's new lock replaces its own locks in that range (split at the edges, merged
//    with adjacent or overlapping ranges of the same type); unlocking splits likewise;
//  - a request that conflicts fails (EAGAIN) or, with `wait`, waits; nothing of the
//    owner's changes until it is granted (an upgrade that waits keeps the read lock), except
//    for flock, where a conversion gives up the old lock first, as Linux does;
//  - waiters are not FIFO, as in Linux: a request that conflicts with no granted lock is
//    granted at once; after every release the waiters are retried in arrival order;
//  - deadlock (class kPosix only): a request that would wait, while an owner in its way
//    waits (transitively) for the requester, fails with EDEADLK. The wait-for graph is
//    the replicated table itself, so every node finds the same cycle;
//  - without quorum a lock request fails with ENOLCK (unlocks and releases still apply);
//  - a node that leaves the lock space loses every lock and waiting request it had.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dlm/types.h"

namespace lunfs::dlm {

enum class PlockClass : uint8_t { kPosix = 0, kFlock = 1 };
enum class PlockType : uint8_t { kRead = 0, kWrite = 1, kUnlock = 2 };
// The largest offset: a range that ends here runs to end of file and beyond.
constexpr uint64_t kPlockEof = UINT64_MAX;

struct PlockOwner {
  NodeId node = 0;
  uint64_t owner = 0;  // the kernel's lock_owner on that node
  auto operator<=>(const PlockOwner&) const = default;
};

// A granted lock; `end` is inclusive.
struct Plock {
  PlockOwner owner;
  uint32_t pid = 0;
  uint64_t start = 0;
  uint64_t end = 0;
  PlockType type = PlockType::kRead;
  bool operator==(const Plock&) const = default;
};

enum class PlockCmd : uint8_t {
  kLock = 1,  // set (or with kUnlock clear) a range; `wait` queues a conflicting request
  kGet,       // report the first lock that conflicts with the range (F_GETLK); no change
  kCancel,    // a waiting request `req` of the sender stops waiting (EINTR)
  kRelease,   // drop every lock of `owner` in class `cls` on `ino` (close, file release)
};

struct PlockOp {
  PlockCmd cmd = PlockCmd::kLock;
  PlockClass cls = PlockClass::kPosix;
  PlockType type = PlockType::kRead;
  bool wait = false;
  uint32_t pid = 0;
  uint64_t ino = 0;
  uint64_t owner = 0;
  uint64_t start = 0;
  uint64_t end = kPlockEof;
  uint64_t req = 0;  // the sender's number for this operation: results name it
};

std::string encode(const PlockOp& op);
std::optional<PlockOp> decode_plock(std::string_view bytes);

// The outcome of request `req` of this table's own node: 0, EAGAIN, EDEADLK, EINTR (a
// waiting request cancelled), ENOLCK (no quorum) or EINVAL; for kGet, the conflict.
struct PlockResult {
  uint64_t req = 0;
  int err = 0;
  std::optional<Plock> conflict;
};

class PlockTable {
 public:
  explicit PlockTable(NodeId self) : self_(self) {}

  // Applies `op` sent by `from`. Results for requests of our own node are appended to
  // `done` in stream order (a waiting request's result comes when it is decided).
  void apply(NodeId from, const PlockOp& op, bool quorate, std::vector<PlockResult>& done);
  // `node` left: its locks and waiting requests go. The waiters it blocked are retried
  // when quorum is restated for the new membership (regain_quorum).
  void drop_node(NodeId node);
  // Quorum is back (the lock table's kQuorum): retry every waiting request.
  void regain_quorum(std::vector<PlockResult>& done);

  // Replicated state, canonical (equal tables encode equally).
  std::string encode() const;
  bool decode(std::string_view blob);
  std::string dump() const;
  // No two conflicting granted locks, ranges sorted, disjoint per owner and merged.
  bool check(std::string* why) const;

  std::vector<Plock> locks(uint64_t ino, PlockClass cls) const;
  size_t waiting(uint64_t ino) const;
  // Whether `owner` has a lock or a waiting request on `ino` in `cls` (a close with none
  // needs no message).
  bool has(uint64_t ino, PlockClass cls, PlockOwner owner) const;

 private:
  struct Waiting {
    NodeId node;
    PlockOp op;
  };
  struct Inode {
    std::vector<Plock> granted[2];  // per class, sorted by (start, owner)
    std::deque<Waiting> waiting;    // arrival order
    bool empty() const { return granted[0].empty() && granted[1].empty() && waiting.empty(); }
  };

  void lock(NodeId from, const PlockOp& op, bool quorate, std::vector<PlockResult>& done);
  const Plock* conflict(const Inode& in, PlockClass cls, PlockOwner who, uint64_t start, uint64_t end,
                        PlockType type) const;
  static void set_range(std::vector<Plock>& g, PlockOwner who, uint32_t pid, uint64_t start, uint64_t end,
                        PlockType type);
  bool deadlocks(PlockOwner requester, const Inode& in, const PlockOp& op) const;
  void retry_waiters(uint64_t ino, std::vector<PlockResult>& done);
  void report(NodeId node, uint64_t req, int err, std::vector<PlockResult>& done,
              std::optional<Plock> conflict = std::nullopt) const;
  void forget_if_empty(uint64_t ino);

  NodeId self_;
  std::map<uint64_t, Inode> inodes_;
};

}  // namespace lunfs::dlm

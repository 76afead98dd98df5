// Basic value types of the lock manager's public API: node and lock ids, the six lock
// modes with their compatibility matrix, status codes, request flags and lock value blocks.
// Deliberately free of Corosync and libqb headers: the file-system core includes this.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lunfs::dlm {

// A Corosync node id (in-process tests use small integers the same way).
using NodeId = uint32_t;
// Identifies a lock of the local node within its lock space; never reused by a process.
using LockId = uint64_t;

enum class Mode : uint8_t { NL = 0, CR, CW, PR, PW, EX };
constexpr int kModeCount = 6;

// The standard VMS / Linux DLM compatibility matrix.
constexpr bool compatible(Mode a, Mode b) {
  constexpr bool m[kModeCount][kModeCount] = {
      //          NL     CR     CW     PR     PW     EX
      /* NL */ {true, true, true, true, true, true},
      /* CR */ {true, true, true, true, true, false},
      /* CW */ {true, true, true, false, false, false},
      /* PR */ {true, true, false, true, false, false},
      /* PW */ {true, true, false, false, false, false},
      /* EX */ {true, false, false, false, false, false},
  };
  return m[static_cast<int>(a)][static_cast<int>(b)];
}

// True when every mode compatible with `from` is also compatible with `to`: converting from
// `from` to `to` can never conflict with anyone, so such a (down-)conversion is granted at once.
constexpr bool is_down_conversion(Mode from, Mode to) {
  for (int x = 0; x < kModeCount; ++x)
    if (compatible(from, Mode(x)) && !compatible(to, Mode(x))) return false;
  return true;
}

// A held mode `held` satisfies a wish for `want` when it is at least as strong.
constexpr bool covers(Mode held, Mode want) { return is_down_conversion(held, want); }

// Modes whose holder may write the lock value block on down-conversion or unlock.
constexpr bool writes_lvb(Mode m) { return m == Mode::PW || m == Mode::EX; }

std::string_view mode_name(Mode m);
std::optional<Mode> parse_mode(std::string_view s);

// Errors are values: every API call and every completion carries one of these; [[nodiscard]]
// so that a call whose result nobody looks at does not compile (-Wunused-result).
enum class [[nodiscard]] Status : uint8_t {
  kOk = 0,
  kAgain,      // NOQUEUE request could not be granted at once
  kCancelled,  // request or conversion cancelled (cancel(), unlock() of a waiting lock)
  kDeadlock,   // conversion refused: it deadlocked with an earlier conversion
  kNoQuorum,   // NOQUEUE request while the lock space has no quorum
  kTimedOut,   // synchronous wrapper gave up (the request was cancelled)
  kShutdown,   // lock space left or its transport failed (corosync gone)
  kStale,      // this node was cut off from the quorate part of the cluster; rejoin
  kInvalid,    // bad argument
  kNotFound,   // no such lock
  kBusy,       // another operation on this lock is still in flight
};
std::string_view status_name(Status s);

// Request flags.
enum Flags : uint32_t {
  kNoQueue = 1u << 0,  // fail with kAgain instead of waiting
  // With kNoQueue: a refusal also sends a blocking callback, once, to the holders in the
  // way (Linux DLM's NOQUEUEBAST): "I could not have it; let go if you no longer need it".
  kNoQueueBast = 1u << 1,
};

constexpr size_t kLvbSize = 32;
using LvbBytes = std::array<uint8_t, kLvbSize>;

// A lock value block as seen by a holder: its bytes and whether they can be trusted. It is
// invalid until first written, and again after a PW/EX holder died without writing it.
struct Lvb {
  LvbBytes bytes{};
  bool valid = false;
};

// A lock a dead node held, as reported to the recovery hook.
struct HeldLock {
  std::string name;
  Mode mode;
};

// One departure of a node from the lock space, whose locks stay held until it is recovered.
// A node id can depart again before its first departure is recovered (a node restarted and
// died again): each departure holds its own locks (and its own journal slot) and is
// recovered on its own, so `id` (given by the replicated table, the same on every member)
// names which one.
struct Departure {
  NodeId node = 0;
  uint32_t id = 0;
  auto operator<=>(const Departure&) const = default;
};

}  // namespace lunfs::dlm

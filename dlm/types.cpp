// Names of modes and statuses, for logs, dumps and the node program's command language.
#include "dlm/types.h"

namespace lunfs::dlm {

namespace {
constexpr std::string_view kModeNames[kModeCount] = {"NL", "CR", "CW", "PR", "PW", "EX"};
}

std::string_view mode_name(Mode m) {
  auto i = static_cast<int>(m);
  return i < kModeCount ? kModeNames[i] : "??";
}

std::optional<Mode> parse_mode(std::string_view s) {
  for (int i = 0; i < kModeCount; ++i)
    if (s == kModeNames[i]) return Mode(i);
  return std::nullopt;
}

std::string_view status_name(Status s) {
  switch (s) {
    case Status::kOk: return "ok";
    case Status::kAgain: return "again";
    case Status::kCancelled: return "cancelled";
    case Status::kDeadlock: return "deadlock";
    case Status::kNoQuorum: return "no-quorum";
    case Status::kTimedOut: return "timed-out";
    case Status::kShutdown: return "shutdown";
    case Status::kStale: return "stale";
    case Status::kInvalid: return "invalid";
    case Status::kNotFound: return "not-found";
    case Status::kBusy: return "busy";
  }
  return "unknown";
}

}  // namespace lunfs::dlm

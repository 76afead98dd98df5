// The root-only local control socket of a node's lock space (libqb IPC, service name
// "lunfs-dlm-<lockspace>"), behind `lunfs locks`. It answers a dump request with the text
// of LockSpace::dump(). It runs its own thread and qb main loop, so a daemon embeds it
// without changing its own loop. One per process.
//
// The same server, with a text per request id, is a mount's control socket
// (start_control_service, control_request): mount.lunfs answers kControlGlocks there, for
// `lunfs status`; a cluster mount serves it under its lock space's name and answers
// kControlDump as well, so `lunfs locks FSNAME` works on a mounted node.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "dlm/types.h"

namespace lunfs::dlm {

constexpr int32_t kControlDump = 1;
constexpr int32_t kControlGlocks = 2;  // a mount's glocks, one per line (GlockTable::dump)
// A cluster mount's view of the cluster: "members N N ..." then one line per dead node
// not recovered yet (NodeRecovery::describe).
constexpr int32_t kControlRecovery = 3;
// A cluster mount's lock-space counters (LockSpaceStats::to_string): lunfs locks --stats.
constexpr int32_t kControlStats = 4;
constexpr size_t kControlMaxMessage = 1 << 20;

std::string control_service_name(const std::string& lockspace);

class ControlServer {
 public:
  virtual ~ControlServer() = default;
};

// Starts serving; `dump` is called on the server thread for each request.
Status start_control_server(const std::string& lockspace, std::function<std::string()> dump,
                            std::unique_ptr<ControlServer>* out);

// Client side: fetches the dump from the node's server (kNotFound: nobody serves it).
Status control_dump(const std::string& lockspace, std::string* text);

// The service of the mount of the LUN whose device file stat(2) describes (st_rdev of a
// block device, st_dev and st_ino of a file): unique on the host, and found alike from the
// device path and from a mount point's source.
std::string mount_control_service_name(const struct stat& device);

// A server under `service` that answers request id `id` with `handlers[id]()` (called on
// the server thread) and anything else with EINVAL. One per process, as above.
Status start_control_service(const std::string& service,
                             std::map<int32_t, std::function<std::string()>> handlers,
                             std::unique_ptr<ControlServer>* out);

// Client side of any service: the text of request `id` (kNotFound: nobody serves it).
Status control_request(const std::string& service, int32_t id, std::string* text);

}  // namespace lunfs::dlm

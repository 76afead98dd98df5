// The root-only local control socket of a node's lock space (libqb IPC, service name
// "lunfs-dlm-<lockspace>"), behind `lunfs locks`. It answers a dump request with the text
// of LockSpace::dump(). It runs its own thread and qb main loop, so a daemon embeds it
// without changing its own loop. One per process.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "dlm/types.h"

namespace lunfs::dlm {

constexpr int32_t kControlDump = 1;
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

}  // namespace lunfs::dlm

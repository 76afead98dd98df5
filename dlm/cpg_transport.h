// The Corosync CPG transport: one CPG group per lock space ("lunfs:" + lock-space name),
// agreed-order multicast, membership from CPG confchg, quorum from libquorum
// (votequorum). Declared without Corosync types so the file-system core can build a lock
// space over it without including Corosync headers; the code is in lunfs_dlm_cpg.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "dlm/lockspace.h"
#include "dlm/transport.h"

namespace lunfs::dlm {

struct CpgStats {
  std::atomic<uint64_t> messages{0};   // CPG messages multicast
  std::atomic<uint64_t> ops{0};        // lock-space operations in them (batching factor)
  std::atomic<uint64_t> try_again{0};  // CS_ERR_TRY_AGAIN answers (flow control)
};

// Connects to the local corosync. Fails with kShutdown when corosync is not running.
Status make_cpg_transport(const std::string& lockspace, std::unique_ptr<Transport>* out,
                          std::shared_ptr<CpgStats> stats = nullptr);

// Convenience for the file system: a lock space over CPG (not joined yet).
Status make_cpg_lockspace(const std::string& lockspace, LockClient* client,
                          std::unique_ptr<LockSpace>* out);

}  // namespace lunfs::dlm

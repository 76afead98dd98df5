// Journal-level crash workloads: each is a Scenario for the crash checker that drives a
// Journal on slot 0 and recovers by replaying that slot.
#pragma once

#include <vector>

#include "tests/crash/crash_checker.h"

namespace lunfs::crash {

Scenario small_transactions_scenario();  // many small txns, group commit, a reopen midway
Scenario overwrite_scenario();           // the same blocks rewritten by every transaction
Scenario revoke_reuse_scenario();        // blocks freed (revoked) and reused as metadata or data
Scenario wraparound_scenario();          // log wraps many times; space-driven and explicit checkpoints
Scenario full_journal_scenario();        // transactions of most of the journal: every commit checkpoints

}  // namespace lunfs::crash

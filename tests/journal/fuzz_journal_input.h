// The journal parser's fuzz harness, shared by the libFuzzer target (fuzz build) and a
// regression test with fixed inputs (every build). The input patches a journal that holds
// committed transactions; replay must then report, never crash, stay idempotent and leave
// a journal fsck calls clean or reports in words.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "journal/replay.h"

namespace lunfs::journal::fuzz {

// Input: byte 0 selects the slot header tail (bit 7 set: tail position = byte 1 % 32);
// then 5-byte patches [journal block % 32][offset lo][offset hi][xor value][op], op bit 0
// re-seals the block's checksum afterwards, so that the fields behind the checksum are
// reached. The unpatched journal holds transactions 1..3 (one with a revoke).
struct Outcome {
  ReplayReport report;
  std::string violation;  // empty when every invariant held
};
Outcome replay_patched_journal(const uint8_t* data, size_t size);

}  // namespace lunfs::journal::fuzz

// libFuzzer entry point for the journal parser (built with LUNFS_FUZZ=ON and clang).
#include <cstdio>
#include <cstdlib>

#include "tests/journal/fuzz_journal_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto outcome = lunfs::journal::fuzz::replay_patched_journal(data, size);
  if (!outcome.violation.empty()) {
    std::fprintf(stderr, "journal invariant violated: %s\n", outcome.violation.c_str());
    std::abort();
  }
  return 0;
}

// libFuzzer entry points; FUZZ_TARGET_NAME selects which.
#include <cstddef>
#include <cstdint>

#include "tests/fuzz/fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FUZZ_TARGET_NAME(data, size);
  return 0;
}

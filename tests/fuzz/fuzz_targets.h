// Entry points shared by the libFuzzer binaries and the regression tests that run them on
// mutated valid blocks in every build.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lunfs::fuzz {

// Byte 0 picks the decoder, byte 1 the block size; the rest is the block. Must never
// crash, hang or leak, whatever the input.
void decode_one_block(const uint8_t* data, size_t size);
// Byte 0..1 pick which metadata block of a small populated image the rest overwrites;
// then the whole checker runs. Must never crash and must report damage it was given
// as findings or an error status, never as a clean report of a changed block.
void check_damaged_image(const uint8_t* data, size_t size);

}  // namespace lunfs::fuzz

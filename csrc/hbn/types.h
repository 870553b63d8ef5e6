// Shared definitions for every kernel family. Read this before any kernel.
#pragma once
#include <cstddef>
#include <cstdint>

namespace hbn {

// One bit-packed word. Bits run along channels: channel c of a pixel lives in word c / 64,
// bit c % 64 (least significant bit first).
using word_t = uint64_t;
constexpr int kWordBits = 64;

// Sign convention, used by every binary kernel, the exporter and hbn_engine.nn.BinActive:
//   bit 0 encodes +1, bit 1 encodes -1, and sign(0) = +1 (so 0.0 and -0.0 pack to bit 0).
// With this encoding the +-1 dot product of two bit vectors of length K is
//   K - 2 * popcount(a XOR w).
// Tail bits past the channel count are always 0 in both operands, so they never count.
inline constexpr int64_t words_for(int64_t bits) { return (bits + kWordBits - 1) / kWordBits; }

// Kernels may read (never write) up to this many bytes past the end of any input buffer the
// runtime hands them; every buffer the runtime allocates carries this much slack.
constexpr size_t kOverReadBytes = 64;

// Alignment of every buffer the runtime plans (one AVX-512 register / cache line).
constexpr size_t kAlignment = 64;

}  // namespace hbn

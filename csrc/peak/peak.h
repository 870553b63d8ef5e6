// Register-resident peak loops: the ceiling each instruction mix reaches on one core, measured
// in the same run as a kernel so benchmarks can report "% of peak". Every loop keeps all its
// operands in registers, runs enough independent accumulator chains to cover the latency of
// its instructions, and returns a checksum so the compiler cannot drop the work.
#pragma once

#include "hbn/isa.h"

namespace hbn {

// Binary MACs per second on one thread for the given path: the xor + popcount + add mix on
// 64-bit lanes (one lane-op = 64 binary MACs). On AVX2, which has no vector popcount, this is
// the better of the nibble-LUT vpshufb loop and the scalar popcnt loop (see peak_binary_variant).
// Runs for about `seconds`. Throws std::invalid_argument when the path cannot run here.
double peak_binary_macs(Isa isa, double seconds);

// One named loop: "scalar", "avx512", "avx2_lut", "avx2_popcnt", "neon".
double peak_binary_variant(const char* name, double seconds);

// fp32 multiply-accumulates per second on one thread (vector FMA; the scalar path uses the
// baseline instruction set, i.e. separate multiply and add on x86-64).
double peak_fma_macs(Isa isa, double seconds);

}  // namespace hbn

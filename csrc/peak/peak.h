// Register-resident peak loops: the ceiling each instruction mix reaches on one core, measured
// in the same run as a kernel so benchmarks can report "% of peak". Every loop keeps all its
// operands in registers, runs enough independent accumulator chains to cover the latency of
// its instructions, and returns a checksum so the compiler cannot drop the work.
#pragma once

#include <string>

namespace hbn {

// Binary MACs per second on one thread for the given ISA path (hbn/isa.h): the xor + popcount
// + add mix on 64-bit lanes (one lane-op = 64 binary MACs). On AVX2, which has no vector
// popcount, this is the better of the nibble-LUT vpshufb loop and the scalar popcnt loop (the
// rows of the "peak_binary" table requiring the path's features). Runs for about `seconds`.
// Throws std::invalid_argument when the path is unknown or cannot run here.
double peak_binary_macs(const std::string& path, double seconds);

// One row of the "peak_binary" table by name ("scalar", "avx512", "avx2_lut", ...).
double peak_binary_variant(const char* name, double seconds);

// fp32 multiply-accumulates per second on one thread (vector FMA; the scalar path uses the
// baseline instruction set, i.e. separate multiply and add on x86-64).
double peak_fma_macs(const std::string& path, double seconds);
// 8-bit multiply-accumulates (u8 x s8 -> s32, exact) per second on one thread, with the
// instructions the path's qgemm row uses (VPDPBUSD, widened VPMADDWD on AVX2, SDOT, SMLAL).
double peak_int8_macs(const std::string& path, double seconds);

}  // namespace hbn

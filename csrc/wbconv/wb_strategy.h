// How the WeightBin conv feeds its +-1 weights to the micro-kernels, and the measured rule
// that picks one (wb_strategy.cc).
#pragma once
#include <cstdint>

namespace hbn {

enum class WBStrategy : int {
  automatic = 0,  // choose_bits_strategy / prefer_lut decide per ISA and shape
  unpack = 1,     // decode a 32-column panel to +-1 floats in a cache-resident buffer, reuse the
                  // float micro-kernel for every row tile of the block
  direct = 2,     // decode the signs in registers on every k step (no buffer)
  lut = 3,        // table lookups on LUT panels (wbconv/lut.h); where no LUT kernel runs, as automatic
};

namespace sgemm_detail {

struct KernelSet;
struct LutKernel;

// The decode strategy (unpack or direct) for a block of rows_in_block rows on kernel set ks,
// when the caller asked for `requested` (automatic or lut: the measured choice).
WBStrategy choose_bits_strategy(const KernelSet& ks, WBStrategy requested, int64_t rows_in_block);
// Whether the LUT kernel runs a GEMM of M rows, when it is available for ks.
bool prefer_lut(const LutKernel& lut, const KernelSet& ks, WBStrategy requested, int64_t M);

}  // namespace sgemm_detail
}  // namespace hbn

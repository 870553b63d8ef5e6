// ARMv8.2 dotprod int8 peak loop: 16 independent SDOT chains (16 MACs each).
#include <arm_neon.h>

#include "peak/peak_impl.h"

namespace hbn {
namespace detail {
namespace {

double int8_dotprod(int64_t iters) {
  int8x16_t x0 = vdupq_n_s8(72), x1 = vdupq_n_s8(-111), w = vdupq_n_s8(-127);
  int32x4_t a[16];
  // Distinct starting values: chains that start equal and take the same operands are one chain
  // to the compiler.
#pragma GCC unroll 16
  for (int j = 0; j < 16; ++j) a[j] = vdupq_n_s32(j);
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+w"(x0), "+w"(x1), "+w"(w));
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) a[j] = vdotq_s32(a[j], j & 1 ? x1 : x0, w);
  }
  int32x4_t s = a[0];
#pragma GCC unroll 16
  for (int j = 1; j < 16; ++j) s = vaddq_s32(s, a[j]);
  return static_cast<double>(vaddvq_s32(s));
}

}  // namespace

PeakLoop peak_int8_dotprod() { return {int8_dotprod, 16.0 * 16}; }

}  // namespace detail
}  // namespace hbn

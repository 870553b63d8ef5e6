// NEON int8 peak loop of the plain-NEON qgemm row's formulation: SMLAL by element (int16 x
// int16 -> int32, 4 MACs per instruction), 16 independent chains.
#include <arm_neon.h>

#include "peak/peak_impl.h"

namespace hbn {
namespace detail {
namespace {

double int8_neon(int64_t iters) {
  int16x8_t w = vdupq_n_s16(-127);
  int16x4_t x = vdup_n_s16(200);
  int32x4_t a[16];
  // Distinct starting values: chains that start equal and take the same operands are one chain
  // to the compiler.
#pragma GCC unroll 16
  for (int j = 0; j < 16; ++j) a[j] = vdupq_n_s32(j);
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+w"(w), "+w"(x));
#pragma GCC unroll 16
    for (int j = 0; j < 16; j += 2) {
      a[j] = vmlal_lane_s16(a[j], vget_low_s16(w), x, 0);
      a[j + 1] = vmlal_high_lane_s16(a[j + 1], w, x, 1);
    }
  }
  int32x4_t s = a[0];
#pragma GCC unroll 16
  for (int j = 1; j < 16; ++j) s = vaddq_s32(s, a[j]);
  return static_cast<double>(vaddvq_s32(s));
}

}  // namespace

PeakLoop peak_int8_neon() { return {int8_neon, 16.0 * 4}; }

}  // namespace detail
}  // namespace hbn

// NEON peak loops: veor + vcnt + byte add (12 chains), and vfmaq_f32 (16 chains). Every
// accumulator array is only ever indexed by constants (loops fully unrolled, reductions
// included): an array read with a run-time index lives in memory, and GCC then stores all its
// elements every iteration (the FMA loop once ran at half the FMA peak that way).
#include <arm_neon.h>

#include "peak/peak_impl.h"

namespace hbn {
namespace detail {
namespace {

double binary_neon(int64_t iters) {
  uint8x16_t x0 = vreinterpretq_u8_u64(vdupq_n_u64(0x0123456789abcdefULL));
  uint8x16_t x1 = vreinterpretq_u8_u64(vdupq_n_u64(0x1111222233334444ULL));
  uint8x16_t x2 = vreinterpretq_u8_u64(vdupq_n_u64(0x5555666677778888ULL));
  uint8x16_t w0 = vreinterpretq_u8_u64(vdupq_n_u64(0x0f0f0f0ff0f0f0f0ULL));
  uint8x16_t w1 = vreinterpretq_u8_u64(vdupq_n_u64(0x3333cccc5555aaaaULL));
  uint8x16_t w2 = vreinterpretq_u8_u64(vdupq_n_u64(0x00ff00ff00ff00ffULL));
  uint8x16_t w3 = vreinterpretq_u8_u64(vdupq_n_u64(0x7777eeee1111bbbbULL));
  uint8x16_t a[12];
#pragma GCC unroll 12
  for (int j = 0; j < 12; ++j) a[j] = vdupq_n_u8(0);
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+w"(x0), "+w"(x1), "+w"(x2), "+w"(w0), "+w"(w1), "+w"(w2), "+w"(w3));
    const uint8x16_t x[3] = {x0, x1, x2}, w[4] = {w0, w1, w2, w3};
#pragma GCC unroll 12
    for (int j = 0; j < 12; ++j) a[j] = vaddq_u8(a[j], vcntq_u8(veorq_u8(x[j >> 2], w[j & 3])));
  }
  uint64_t s = 0;
#pragma GCC unroll 12
  for (int j = 0; j < 12; ++j) s += vaddlvq_u8(a[j]);
  return static_cast<double>(s);
}

double fma_neon(int64_t iters) {
  float32x4_t x0 = vdupq_n_f32(1.0001f), x1 = vdupq_n_f32(0.9999f), w = vdupq_n_f32(0.5f);
  float32x4_t a[16];
#pragma GCC unroll 16
  for (int j = 0; j < 16; ++j) a[j] = vdupq_n_f32(0.0f);
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+w"(x0), "+w"(x1), "+w"(w));
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) a[j] = vfmaq_f32(a[j], j & 1 ? x1 : x0, w);
  }
  float32x4_t s = a[0];
#pragma GCC unroll 16
  for (int j = 1; j < 16; ++j) s = vaddq_f32(s, a[j]);
  return vaddvq_f32(s);
}

}  // namespace

PeakLoop peak_binary_neon() { return {binary_neon, 12.0 * 2 * 64}; }
PeakLoop peak_fma_neon() { return {fma_neon, 16.0 * 4}; }

}  // namespace detail
}  // namespace hbn

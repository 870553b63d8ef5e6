// AVX-512 VNNI int8 peak loop: 16 independent VPDPBUSD zmm chains (64 u8 x s8 MACs each).
#include <immintrin.h>

#include "peak/peak_impl.h"

namespace hbn {
namespace detail {
namespace {

double int8_avx512vnni(int64_t iters) {
  __m512i x0 = _mm512_set1_epi32(0x01020304), x1 = _mm512_set1_epi32(0x05060708), w = _mm512_set1_epi32(0x01ff01ff);
  __m512i a[16];
  // Distinct starting values: chains that start equal and take the same operands are one chain
  // to the compiler (GCC merged all 16 into 2).
#pragma GCC unroll 16
  for (int j = 0; j < 16; ++j) a[j] = _mm512_set1_epi32(j);
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+v"(x0), "+v"(x1), "+v"(w));
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j)  // asm: GCC's code for the intrinsic copied accumulators
      asm("vpdpbusd %[w], %[x], %[a]" : [a] "+v"(a[j]) : [x] "v"(j & 1 ? x1 : x0), [w] "v"(w));
  }
  __m512i s = a[0];
#pragma GCC unroll 16
  for (int j = 1; j < 16; ++j) s = _mm512_add_epi32(s, a[j]);
  alignas(64) int32_t v[16];
  _mm512_store_si512(v, s);
  double r = 0;
  for (int32_t e : v) r += e;
  return r;
}

}  // namespace

PeakLoop peak_int8_avx512vnni() { return {int8_avx512vnni, 16.0 * 64}; }

}  // namespace detail
}  // namespace hbn

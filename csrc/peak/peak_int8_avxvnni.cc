// AVX-VNNI int8 peak loop: 10 independent VPDPBUSD ymm chains (32 u8 x s8 MACs
// each; 10 accumulators and 3 operands fit the 16 registers VEX can name).
#include <immintrin.h>

#include "peak/peak_impl.h"

namespace hbn {
namespace detail {
namespace {

double int8_avxvnni(int64_t iters) {
  __m256i x0 = _mm256_set1_epi32(0x01020304), x1 = _mm256_set1_epi32(0x05060708), w = _mm256_set1_epi32(0x01ff01ff);
  __m256i a[10];
  // Distinct starting values: chains that start equal and take the same operands are one chain
  // to the compiler.
#pragma GCC unroll 16
  for (int j = 0; j < 10; ++j) a[j] = _mm256_set1_epi32(j);
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+x"(x0), "+x"(x1), "+x"(w));
#pragma GCC unroll 10
    for (int j = 0; j < 10; ++j)  // asm: GCC's code for the intrinsic stored accumulators
      asm("%{vex%} vpdpbusd %[w], %[x], %[a]" : [a] "+x"(a[j]) : [x] "x"(j & 1 ? x1 : x0), [w] "x"(w));
  }
  __m256i s = a[0];
#pragma GCC unroll 16
  for (int j = 1; j < 10; ++j) s = _mm256_add_epi32(s, a[j]);
  alignas(32) int32_t v[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(v), s);
  double r = 0;
  for (int32_t e : v) r += e;
  return r;
}

}  // namespace

PeakLoop peak_int8_avxvnni() { return {int8_avxvnni, 10.0 * 32}; }

}  // namespace detail
}  // namespace hbn

// AVX-VNNI int8 peak loop: 12 independent VPDPBUSD ymm chains (32 u8 x s8 MACs each).
#include <immintrin.h>

#include "peak/peak_impl.h"

namespace hbn {
namespace detail {
namespace {

double int8_avxvnni(int64_t iters) {
  __m256i x0 = _mm256_set1_epi32(0x01020304), x1 = _mm256_set1_epi32(0x05060708), w = _mm256_set1_epi32(0x01ff01ff);
  __m256i a[12];
  for (auto& v : a) v = _mm256_setzero_si256();
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+x"(x0), "+x"(x1), "+x"(w));
#pragma GCC unroll 12
    for (int j = 0; j < 12; ++j) a[j] = _mm256_dpbusd_avx_epi32(a[j], j & 1 ? x1 : x0, w);
  }
  __m256i s = a[0];
  for (int j = 1; j < 12; ++j) s = _mm256_add_epi32(s, a[j]);
  alignas(32) int32_t v[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(v), s);
  double r = 0;
  for (int32_t e : v) r += e;
  return r;
}

}  // namespace

PeakLoop peak_int8_avxvnni() { return {int8_avxvnni, 12.0 * 32}; }

}  // namespace detail
}  // namespace hbn

// AVX2 int8 peak loop of the exact formulation the qgemm avx2 row uses: operands widened to
// int16, VPMADDWD + VPADDD per 16 MACs (VPMADDUBSW would do 32 per op but saturates int16,
// see csrc/qconv/qgemm_avx2.cc). 12 independent chains.
#include <immintrin.h>

#include "peak/peak_impl.h"

namespace hbn {
namespace detail {
namespace {

double int8_avx2(int64_t iters) {
  __m256i x0 = _mm256_set1_epi16(200), x1 = _mm256_set1_epi16(17), w = _mm256_set1_epi16(-127);
  __m256i a[12];
  for (auto& v : a) v = _mm256_setzero_si256();
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+x"(x0), "+x"(x1), "+x"(w));
#pragma GCC unroll 12
    for (int j = 0; j < 12; ++j) a[j] = _mm256_add_epi32(a[j], _mm256_madd_epi16(j & 1 ? x1 : x0, w));
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

PeakLoop peak_int8_avx2() { return {int8_avx2, 12.0 * 16}; }

}  // namespace detail
}  // namespace hbn

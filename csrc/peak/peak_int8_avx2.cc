// AVX2 int8 peak loop of the exact formulation the qgemm avx2 row uses: operands widened to
// int16, VPMADDWD + VPADDD per 16 MACs (VPMADDUBSW would do 32 per op but saturates int16,
// see csrc/qconv/qgemm_avx2.cc). 10 independent chains.
#include <immintrin.h>

#include "peak/peak_impl.h"

namespace hbn {
namespace detail {
namespace {

double int8_avx2(int64_t iters) {
  __m256i x0 = _mm256_set1_epi16(200), x1 = _mm256_set1_epi16(17), w = _mm256_set1_epi16(-127);
  __m256i a[10];
#pragma GCC unroll 16
  for (int j = 0; j < 10; ++j) a[j] = _mm256_set1_epi32(j);
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+x"(x0), "+x"(x1), "+x"(w));
#pragma GCC unroll 10
    for (int j = 0; j < 10; ++j) {
      // asm: as intrinsics, the identical VPMADDWD were computed once (the loop then measured
      // additions only) and the accumulators went through the stack.
      __m256i t;
      asm("vpmaddwd %[w], %[x], %[t]\n\tvpaddd %[t], %[a], %[a]"
          : [a] "+x"(a[j]), [t] "=&x"(t)
          : [x] "x"(j & 1 ? x1 : x0), [w] "x"(w));
    }
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

PeakLoop peak_int8_avx2() { return {int8_avx2, 10.0 * 16}; }

}  // namespace detail
}  // namespace hbn

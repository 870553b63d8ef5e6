// AVX-512 peak loops: 16 independent vpopcntq / vfmadd chains, operands pinned in registers.
#include <immintrin.h>

#include "peak/peak_impl.h"

namespace hbn {
namespace detail {
namespace {

double binary_avx512(int64_t iters) {
  // 4 "activation" x 4 "weight" registers, 16 accumulators: the kernel's tile shape in small.
  __m512i x0 = _mm512_set1_epi64(0x0123456789abcdefLL), x1 = _mm512_set1_epi64(0x1111222233334444LL);
  __m512i x2 = _mm512_set1_epi64(0x5555666677778888LL), x3 = _mm512_set1_epi64(0x13579bdf2468ace0LL);
  __m512i w0 = _mm512_set1_epi64(0x0f0f0f0ff0f0f0f0LL), w1 = _mm512_set1_epi64(0x3333cccc5555aaaaLL);
  __m512i w2 = _mm512_set1_epi64(0x00ff00ff00ff00ffLL), w3 = _mm512_set1_epi64(0x7777eeee1111bbbbLL);
  __m512i a[16];
  for (auto& v : a) v = _mm512_setzero_si512();
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+v"(x0), "+v"(x1), "+v"(x2), "+v"(x3), "+v"(w0), "+v"(w1), "+v"(w2), "+v"(w3));
    const __m512i x[4] = {x0, x1, x2, x3}, w[4] = {w0, w1, w2, w3};
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j)
      a[j] = _mm512_add_epi64(a[j], _mm512_popcnt_epi64(_mm512_xor_si512(x[j >> 2], w[j & 3])));
  }
  __m512i s = a[0];
  for (int j = 1; j < 16; ++j) s = _mm512_add_epi64(s, a[j]);
  return static_cast<double>(_mm512_reduce_add_epi64(s));
}

double fma_avx512(int64_t iters) {
  __m512 x0 = _mm512_set1_ps(1.0001f), x1 = _mm512_set1_ps(0.9999f), w = _mm512_set1_ps(0.5f);
  __m512 a[16];
  for (auto& v : a) v = _mm512_setzero_ps();
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+v"(x0), "+v"(x1), "+v"(w));
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) a[j] = _mm512_fmadd_ps(j & 1 ? x1 : x0, w, a[j]);
  }
  __m512 s = a[0];
  for (int j = 1; j < 16; ++j) s = _mm512_add_ps(s, a[j]);
  return _mm512_reduce_add_ps(s);
}

}  // namespace

PeakLoop peak_binary_avx512() { return {binary_avx512, 16.0 * 8 * 64}; }
PeakLoop peak_fma_avx512() { return {fma_avx512, 16.0 * 16}; }

}  // namespace detail
}  // namespace hbn

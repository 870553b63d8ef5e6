// AVX2 peak loops. Binary: the nibble-LUT vpshufb popcount with byte accumulators (the
// kernel's mix; the periodic vpsadbw flush is left out, it is 1/31 of the work), and the
// scalar popcnt instruction on general registers. FMA: 12 independent ymm chains.
#include <immintrin.h>

#include "peak/peak_impl.h"

namespace hbn {
namespace detail {
namespace {

double binary_lut(int64_t iters) {
  __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,  //
                                 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  __m256i low = _mm256_set1_epi8(0x0f);
  __m256i x0 = _mm256_set1_epi64x(0x0123456789abcdefLL), x1 = _mm256_set1_epi64x(0x1111222233334444LL);
  __m256i x2 = _mm256_set1_epi64x(0x5555666677778888LL);
  __m256i w0 = _mm256_set1_epi64x(0x0f0f0f0ff0f0f0f0LL), w1 = _mm256_set1_epi64x(0x3333cccc5555aaaaLL);
  __m256i a[6];
  for (auto& v : a) v = _mm256_setzero_si256();
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+x"(x0), "+x"(x1), "+x"(x2), "+x"(w0), "+x"(w1), "+x"(lut), "+x"(low));
    const __m256i x[3] = {x0, x1, x2}, w[2] = {w0, w1};
#pragma GCC unroll 6
    for (int j = 0; j < 6; ++j) {
      const __m256i d = _mm256_xor_si256(x[j >> 1], w[j & 1]);
      const __m256i c = _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(d, low)),
                                        _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(d, 4), low)));
      a[j] = _mm256_add_epi8(a[j], c);
    }
  }
  __m256i s = _mm256_setzero_si256();
  for (auto& v : a) s = _mm256_add_epi64(s, _mm256_sad_epu8(v, _mm256_setzero_si256()));
  alignas(32) long long out[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(out), s);
  return static_cast<double>(out[0] + out[1] + out[2] + out[3]);
}

double binary_popcnt(int64_t iters) {
  uint64_t x0 = 0x0123456789abcdefULL, x1 = 0xfedcba9876543210ULL;
  uint64_t w0 = 0x5555aaaa3333ccccULL, w1 = 0x0f0f0f0ff0f0f0f0ULL, w2 = 0x1111222244448888ULL;
  uint64_t a[6] = {};
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+r"(x0), "+r"(x1), "+r"(w0), "+r"(w1), "+r"(w2));
    a[0] += _mm_popcnt_u64(x0 ^ w0);
    a[1] += _mm_popcnt_u64(x0 ^ w1);
    a[2] += _mm_popcnt_u64(x0 ^ w2);
    a[3] += _mm_popcnt_u64(x1 ^ w0);
    a[4] += _mm_popcnt_u64(x1 ^ w1);
    a[5] += _mm_popcnt_u64(x1 ^ w2);
  }
  return static_cast<double>(a[0] + a[1] + a[2] + a[3] + a[4] + a[5]);
}

double fma_avx2(int64_t iters) {
  __m256 x0 = _mm256_set1_ps(1.0001f), x1 = _mm256_set1_ps(0.9999f), w = _mm256_set1_ps(0.5f);
  __m256 a[12];
  for (auto& v : a) v = _mm256_setzero_ps();
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : "+x"(x0), "+x"(x1), "+x"(w));
#pragma GCC unroll 12
    for (int j = 0; j < 12; ++j) a[j] = _mm256_fmadd_ps(j & 1 ? x1 : x0, w, a[j]);
  }
  __m256 s = a[0];
  for (int j = 1; j < 12; ++j) s = _mm256_add_ps(s, a[j]);
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

}  // namespace

PeakLoop peak_binary_avx2_lut() { return {binary_lut, 6.0 * 4 * 64}; }
PeakLoop peak_binary_avx2_popcnt() { return {binary_popcnt, 6.0 * 64}; }
PeakLoop peak_fma_avx2() { return {fma_avx2, 12.0 * 8}; }

}  // namespace detail
}  // namespace hbn

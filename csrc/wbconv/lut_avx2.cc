// AVX2 table-lookup WeightBin kernel (contract in wbconv/lut.h).
#include <immintrin.h>

#include "fconv/store_avx2.h"
#include "wbconv/lut.h"

namespace hbn {
namespace sgemm_detail {
namespace {

// The LUT kernel (contract in wbconv/lut.h) with 8-entry tables: 3 inputs per group, 8 columns
// per vpermps; 4 vectors (32 columns) x 2 rows of accumulators keep it within 16 registers.
constexpr int kLutNR = 32;
constexpr int kLutMR = 2;

template <int R>
void lut_tile(const float* a, int64_t lda, int kc, const uint32_t* panel, const Tile& tile) {
  // S_i[p] = -1 where bit i of pattern p is set (bit 1 = -1): table = x0*S0 + x1*S1 + x2*S2.
  const __m256 s0 = _mm256_setr_ps(1, -1, 1, -1, 1, -1, 1, -1);
  const __m256 s1 = _mm256_setr_ps(1, 1, -1, -1, 1, 1, -1, -1);
  const __m256 s2 = _mm256_setr_ps(1, 1, 1, 1, -1, -1, -1, -1);
  for (int r = 0; r < R; ++r) __builtin_prefetch(tile.c + r * tile.ldc, 1, 3);
  __m256 acc[R][4];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm256_setzero_ps();
#pragma GCC unroll 1
  for (int k = 0; k < kc; k += 3) {
    __m256 table[R];
    const int valid = kc - k;
    for (int r = 0; r < R; ++r) {
      const float* x = a + r * lda + k;
      if (valid >= 3) {
        __m256 t = _mm256_mul_ps(_mm256_broadcast_ss(x), s0);
        t = _mm256_fmadd_ps(_mm256_broadcast_ss(x + 1), s1, t);
        table[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(x + 2), s2, t);
      } else {
        // The last group of a block whose kc is not a multiple of 3: missing inputs are 0.
        __m256 t = _mm256_mul_ps(_mm256_broadcast_ss(x), s0);
        if (valid == 2) t = _mm256_fmadd_ps(_mm256_broadcast_ss(x + 1), s1, t);
        table[r] = t;
      }
    }
    const uint32_t* word = panel + (k / 24) * kLutNR;
    const __m128i shift = _mm_cvtsi32_si128(4 * ((k % 24) / 3));  // this group's nibble
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m256i id = _mm256_srl_epi32(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(word + 8 * j)), shift);
      for (int r = 0; r < R; ++r)
        acc[r][j] = _mm256_add_ps(acc[r][j], _mm256_permutevar8x32_ps(table[r], id));
    }
  }
  __m256 out[R][2];
  for (int h = 0; h < 2; ++h) {
    for (int r = 0; r < R; ++r) {
      out[r][0] = acc[r][2 * h];
      out[r][1] = acc[r][2 * h + 1];
    }
    if (tile.nr == kNR) {
      store_half<R>(out, tile, h);
    } else {
      // Partial panel: both halves through the scalar store.
      float buf[R][kNR];
      for (int hh = 0; hh < 2; ++hh)
        for (int r = 0; r < R; ++r) {
          _mm256_storeu_ps(&buf[r][16 * hh], acc[r][2 * hh]);
          _mm256_storeu_ps(&buf[r][16 * hh + 8], acc[r][2 * hh + 1]);
        }
      store_tile_scalar(&buf[0][0], kNR, tile);
      return;
    }
  }
}

void lut_kernel(const float* a, int64_t lda, int kc, const uint32_t* panel, const Tile& tile) {
  dispatch_rows<kLutMR>(tile.mr, [&](auto r) { lut_tile<decltype(r)::value>(a, lda, kc, panel, tile); });
}

}  // namespace

LutKernel lut_kernel_avx2() { return LutKernel{&lut_kernel, {kLutNR, kLutMR, 3}, false}; }

}  // namespace sgemm_detail
}  // namespace hbn

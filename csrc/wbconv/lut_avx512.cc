// AVX-512 table-lookup WeightBin kernel (contract in wbconv/lut.h): 16-entry tables of the
// signed sums of 4 inputs, 16 columns per vpermps.
#include <immintrin.h>

#include "fconv/store_avx512.h"
#include "wbconv/lut.h"

namespace hbn {
namespace sgemm_detail {
namespace {

// The panel: 8 vectors of 16 columns, tiles of 3 rows (24 accumulators).
constexpr int kLutNR = 128;
constexpr int kLutMR = 3;

// The LUT kernel (contract in wbconv/lut.h). S_i holds, for each of the 16 patterns p, the sign
// bit i of p gives input i (bit 1 = -1): table = x0*S0 + x1*S1 + x2*S2 + x3*S3.
struct LutSigns {
  __m512 s[4];
  LutSigns() {
    for (int i = 0; i < 4; ++i) {
      alignas(64) float v[16];
      for (int p = 0; p < 16; ++p) v[p] = ((p >> i) & 1) ? -1.0f : 1.0f;
      s[i] = _mm512_load_ps(v);
    }
  }
};

template <int R>
inline void lut_tables(const float* a, int64_t lda, int k, int valid, const LutSigns& sg,
                       __m512 (&table)[R]) {
  for (int r = 0; r < R; ++r) {
    const float* x = a + r * lda + k;
    if (valid >= 4) {
      __m512 t = _mm512_mul_ps(_mm512_set1_ps(x[0]), sg.s[0]);
      t = _mm512_fmadd_ps(_mm512_set1_ps(x[1]), sg.s[1], t);
      t = _mm512_fmadd_ps(_mm512_set1_ps(x[2]), sg.s[2], t);
      table[r] = _mm512_fmadd_ps(_mm512_set1_ps(x[3]), sg.s[3], t);
    } else {
      // The last group of a block whose kc is not a multiple of 4: missing inputs are 0.
      __m512 t = _mm512_setzero_ps();
      for (int i = 0; i < valid; ++i) t = _mm512_fmadd_ps(_mm512_set1_ps(x[i]), sg.s[i], t);
      table[r] = t;
    }
  }
}

// NV = the 16-column vectors holding valid columns (1, 2, 4 or 8): a 16-output layer (a
// SqueezeNet squeeze) pays for one vector, not eight.
template <int R, int NV>
void lut_tile(const float* a, int64_t lda, int kc, const uint32_t* panel, const Tile& tile) {
  static_assert(kLutNR == 128, "8 vectors of 16 columns");
  static const LutSigns sg;
  for (int r = 0; r < R; ++r)
    for (int h = 0; h < NV; h += 2) __builtin_prefetch(tile.c + r * tile.ldc + 16 * h, 1, 3);
  __m512 acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NV; ++j) acc[r][j] = _mm512_setzero_ps();
  // One group of 4 k per iteration, kept a real loop: fully unrolled octets let GCC hoist all
  // 64 permutes of an octet and spill them (measured: accumulators and permutes on the stack).
#pragma GCC unroll 1
  for (int k = 0; k < kc; k += 4) {
    __m512 table[R];
    lut_tables<R>(a, lda, k, kc - k, sg, table);
    const uint32_t* octet = panel + (k / 32) * kLutNR;
    const __m128i shift = _mm_cvtsi32_si128(k % 32);  // nibble k/4 % 8 of each lane
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      const __m512i id = _mm512_srl_epi32(_mm512_loadu_si512(octet + 16 * j), shift);
#pragma GCC unroll 3
      for (int r = 0; r < R; ++r)
        acc[r][j] = _mm512_add_ps(acc[r][j], _mm512_permutexvar_ps(id, table[r]));
    }
  }
  // 32-column sub-tiles through the shared (masked) store.
  const __m512 zero = _mm512_setzero_ps();
  for (int sub = 0; sub < 4; ++sub) {
    Tile t = tile;
    t.nr = tile.nr - 32 * sub;
    if (t.nr <= 0) break;
    if (t.nr > 32) t.nr = 32;
    t.c = tile.c + 32 * sub;
    t.n0 = tile.n0 + 32 * sub;
    __m512 part[R][2];
    for (int r = 0; r < R; ++r) {
      part[r][0] = 2 * sub < NV ? acc[r][2 * sub] : zero;
      part[r][1] = 2 * sub + 1 < NV ? acc[r][2 * sub + 1] : zero;
    }
    if (t.nr <= 16) store_tile<R, 1>(part, t);
    else store_tile<R, 2>(part, t);
  }
}

void lut_kernel(const float* a, int64_t lda, int kc, const uint32_t* panel, const Tile& tile) {
  auto rows = [&](auto nv) {
    dispatch_rows<kLutMR>(tile.mr, [&](auto r) {
      lut_tile<decltype(r)::value, decltype(nv)::value>(a, lda, kc, panel, tile);
    });
  };
  if (tile.nr <= 16) return rows(std::integral_constant<int, 1>{});
  if (tile.nr <= 32) return rows(std::integral_constant<int, 2>{});
  if (tile.nr <= 64) return rows(std::integral_constant<int, 4>{});
  rows(std::integral_constant<int, 8>{});
}

}  // namespace

LutKernel lut_kernel_avx512() { return LutKernel{&lut_kernel, {kLutNR, kLutMR, 4}, true}; }

}  // namespace sgemm_detail
}  // namespace hbn

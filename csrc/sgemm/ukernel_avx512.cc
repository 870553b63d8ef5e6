// AVX-512 micro-kernels: a 14 x 32 tile = 28 zmm accumulators + 2 B vectors + 1 broadcast,
// 31 of the 32 registers. Per k step: 2 loads of B, 14 broadcasts of A, 28 FMAs, enough
// independent FMAs to cover the latency on both FMA pipes.
#include <immintrin.h>

#include "sgemm/ukernel.h"

namespace hbn {
namespace sgemm_detail {
namespace {

constexpr int kMR = 14;
// The LUT kernel's panel: 8 vectors of 16 columns, tiles of 3 rows (24 accumulators).
constexpr int kLutNR = 128;
constexpr int kLutMR = 3;

// Stores the first NV 16-column halves of the tile. Partial tiles (nr < 32: the last panel of
// an N that is not a multiple of 32) use masked loads and stores, which never touch the
// columns past nr (nor fault on them), so they stay in registers instead of going through the
// scalar store.
template <int R, int NV>
inline void store_tile(__m512 (&acc)[R][2], const Tile& tile) {
  __mmask16 mk[2];
  for (int h = 0; h < 2; ++h) {
    const int valid = tile.nr - 16 * h;
    mk[h] = valid >= 16 ? static_cast<__mmask16>(0xffff)
                        : static_cast<__mmask16>(valid > 0 ? (1u << valid) - 1 : 0);
  }
  const OutputTransform* t = tile.t;
  const __m512 zero = _mm512_setzero_ps();
  __m512 sc[2] = {zero, zero}, bi[2] = {zero, zero};
  for (int h = 0; h < NV; ++h) {
    if (t && t->scale) sc[h] = _mm512_maskz_loadu_ps(mk[h], t->scale + tile.n0 + 16 * h);
    if (t && t->bias) bi[h] = _mm512_maskz_loadu_ps(mk[h], t->bias + tile.n0 + 16 * h);
  }
  const bool relu = t && t->act == Activation::relu;
  for (int r = 0; r < R; ++r) {
    float* c = tile.c + r * tile.ldc;
    __m512 ps = zero;
    if (t && t->pixel_scale) ps = _mm512_set1_ps(t->pixel_scale[tile.m0 + r]);
    for (int h = 0; h < NV; ++h) {
      __m512 v = acc[r][h];
      if (tile.accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk[h], c + 16 * h));
      if (t) {
        if (t->scale) v = _mm512_mul_ps(v, sc[h]);
        if (t->pixel_scale) v = _mm512_mul_ps(v, ps);
        if (t->bias) v = _mm512_add_ps(v, bi[h]);
        // Keep v only where v > 0 (ordered), exactly apply_transform's !(y > 0) -> 0 (NaN too).
        if (relu) v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v);
      }
      _mm512_mask_storeu_ps(c + 16 * h, mk[h], v);
    }
  }
}

// Short tiles (a batch-1 linear layer has one row) would leave only 2R accumulator chains,
// fewer than the FMA latency x pipes needs; they split k over S independent accumulator sets
// (k, k+1, ... round robin) summed at the end. Deterministic: S depends on R only.
template <int R>
constexpr int sets_for() { return R <= 2 ? 4 : (R <= 4 ? 2 : 1); }

// NV = 1 when the tile has at most 16 valid columns (nr <= 16): the upper half would be FMAs
// on zero padding, so it is skipped. load_b(k) reads B row k counted over all runs; the
// accumulators stay in registers across runs.
template <int R, int NV, typename LoadB>
inline void tile_loop(const ARuns& A, LoadB load_b, const Tile& tile) {
  constexpr int S = sets_for<R>();
  // Fetch the C tile for writing now, so its lines arrive while the k loop runs: when C is
  // larger than L2 (a first layer's output: 12544 x 64 floats for ResNet-18), the stores would
  // otherwise wait on memory at the end of every tile (measured: 37 against 50 GMAC/s).
  for (int r = 0; r < R; ++r) {
    __builtin_prefetch(tile.c + r * tile.ldc, 1, 3);
    if (NV == 2) __builtin_prefetch(tile.c + r * tile.ldc + 16, 1, 3);
  }
  __m512 acc[S][R][2];
  for (int s = 0; s < S; ++s)
    for (int r = 0; r < R; ++r) acc[s][r][0] = acc[s][r][1] = _mm512_setzero_ps();
  const int64_t lda = A.lda;
  const int len = A.len;
  for (int run = 0; run < A.nruns; ++run) {
    const float* a = A.a + run * A.run_stride;
    const int kb = run * len;
    int k = 0;
#pragma GCC unroll 4
    for (; k + S <= len; k += S) {
#pragma GCC unroll 4
      for (int s = 0; s < S; ++s) {
        __m512 b0, b1;
        load_b(kb + k + s, b0, b1);
#pragma GCC unroll 14
        for (int r = 0; r < R; ++r) {
          const __m512 av = _mm512_set1_ps(a[r * lda + k + s]);
          acc[s][r][0] = _mm512_fmadd_ps(av, b0, acc[s][r][0]);
          if (NV == 2) acc[s][r][1] = _mm512_fmadd_ps(av, b1, acc[s][r][1]);
        }
      }
    }
    for (; k < len; ++k) {
      __m512 b0, b1;
      load_b(kb + k, b0, b1);
#pragma GCC unroll 14
      for (int r = 0; r < R; ++r) {
        const __m512 av = _mm512_set1_ps(a[r * lda + k]);
        acc[0][r][0] = _mm512_fmadd_ps(av, b0, acc[0][r][0]);
        if (NV == 2) acc[0][r][1] = _mm512_fmadd_ps(av, b1, acc[0][r][1]);
      }
    }
  }
  for (int s = 1; s < S; ++s)
    for (int r = 0; r < R; ++r) {
      acc[0][r][0] = _mm512_add_ps(acc[0][r][0], acc[s][r][0]);
      acc[0][r][1] = _mm512_add_ps(acc[0][r][1], acc[s][r][1]);
    }
  store_tile<R, NV>(acc[0], tile);
}

template <int R, int NV>
void f32_tile(const ARuns& a, const float* b, const Tile& tile) {
  tile_loop<R, NV>(a,
               [b](int k, __m512& b0, __m512& b1) {
                 b0 = _mm512_loadu_ps(b + k * kNR);
                 b1 = _mm512_loadu_ps(b + k * kNR + 16);
               },
               tile);
}

// Signs decoded in registers: bit j of bits[k] selects -1 for column j (types.h convention),
// one k-mask blend per 16 columns.
template <int R, int NV>
void bits_tile(const ARuns& a, const uint32_t* bits, const Tile& tile) {
  const __m512 one = _mm512_set1_ps(1.0f), neg = _mm512_set1_ps(-1.0f);
  tile_loop<R, NV>(a,
               [bits, one, neg](int k, __m512& b0, __m512& b1) {
                 const uint32_t w = bits[k];
                 b0 = _mm512_mask_blend_ps(static_cast<__mmask16>(w), one, neg);
                 b1 = _mm512_mask_blend_ps(static_cast<__mmask16>(w >> 16), one, neg);
               },
               tile);
}

// One row (batch-1 linear layers): with x the row and w = +-1,
//   sum_k x_k w_k = sum_k x_k - 2 * sum_{k: w_k = -1} x_k,
// so each k step needs one masked add per 16 columns instead of a blend and an FMA. The adds
// avoid the blend feeding every FMA; measured in L1 on Zen 4, one row: 56% of the FMA peak
// (in MACs) against 51% for blend+FMA. From two rows on, blend+FMA is as fast or faster
// (72% vs 69% at two rows), since one blend then feeds 2R FMAs.
// The row sum is a separate vector pass over the row; the result differs from the FMA form
// only by float rounding.
template <int R>
void bits_tile_masked(const ARuns& A, const uint32_t* bits, const Tile& tile) {
  constexpr int S = 4;  // independent accumulator sets: add latency x pipes
  __m512 neg[S][R][2];
  for (int s = 0; s < S; ++s)
    for (int r = 0; r < R; ++r) neg[s][r][0] = neg[s][r][1] = _mm512_setzero_ps();
  const int64_t lda = A.lda;
  const int len = A.len;
  __m512 sum[R];
  for (int r = 0; r < R; ++r) sum[r] = _mm512_setzero_ps();
  for (int run = 0; run < A.nruns; ++run) {
    const float* a = A.a + run * A.run_stride;
    const uint32_t* w_run = bits + static_cast<int64_t>(run) * len;
    int k = 0;
    for (; k + S <= len; k += S) {
#pragma GCC unroll 4
      for (int s = 0; s < S; ++s) {
        const uint32_t w = w_run[k + s];
        const __mmask16 m0 = static_cast<__mmask16>(w), m1 = static_cast<__mmask16>(w >> 16);
        for (int r = 0; r < R; ++r) {
          const __m512 xb = _mm512_set1_ps(a[r * lda + k + s]);
          neg[s][r][0] = _mm512_mask_add_ps(neg[s][r][0], m0, neg[s][r][0], xb);
          neg[s][r][1] = _mm512_mask_add_ps(neg[s][r][1], m1, neg[s][r][1], xb);
        }
      }
    }
    for (; k < len; ++k) {
      const uint32_t w = w_run[k];
      const __mmask16 m0 = static_cast<__mmask16>(w), m1 = static_cast<__mmask16>(w >> 16);
      for (int r = 0; r < R; ++r) {
        const __m512 xb = _mm512_set1_ps(a[r * lda + k]);
        neg[0][r][0] = _mm512_mask_add_ps(neg[0][r][0], m0, neg[0][r][0], xb);
        neg[0][r][1] = _mm512_mask_add_ps(neg[0][r][1], m1, neg[0][r][1], xb);
      }
    }
    // The row sum, a separate vector pass over the run.
    for (int r = 0; r < R; ++r) {
      const float* row = a + r * lda;
      int j = 0;
      for (; j + 16 <= len; j += 16) sum[r] = _mm512_add_ps(sum[r], _mm512_loadu_ps(row + j));
      if (j < len)
        sum[r] = _mm512_add_ps(
            sum[r], _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << (len - j)) - 1), row + j));
    }
  }
  __m512 acc[R][2];
  const __m512 two = _mm512_set1_ps(2.0f);
  for (int r = 0; r < R; ++r) {
    for (int s = 1; s < S; ++s) {
      neg[0][r][0] = _mm512_add_ps(neg[0][r][0], neg[s][r][0]);
      neg[0][r][1] = _mm512_add_ps(neg[0][r][1], neg[s][r][1]);
    }
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, sum[r]);
    float t = 0.0f;
    for (float v : lanes) t += v;
    const __m512 total = _mm512_set1_ps(t);
    acc[r][0] = _mm512_fnmadd_ps(two, neg[0][r][0], total);
    acc[r][1] = _mm512_fnmadd_ps(two, neg[0][r][1], total);
  }
  store_tile<R, 2>(acc, tile);
}

// The LUT kernel (contract in ukernel.h). S_i holds, for each of the 16 patterns p, the sign
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

// NV = 1 skips the upper 16 columns of a tile with nr <= 16 (see tile_loop).
void f32_kernel(const ARuns& a, const float* b, const Tile& tile) {
  auto run = [&](auto nv) {
    dispatch_rows<kMR>(tile.mr, [&](auto r) { f32_tile<decltype(r)::value, decltype(nv)::value>(a, b, tile); });
  };
  if (tile.nr <= 16) return run(std::integral_constant<int, 1>{});
  run(std::integral_constant<int, 2>{});
}

void bits_kernel(const ARuns& a, const uint32_t* bits, const Tile& tile) {
  if (tile.mr == 1) return bits_tile_masked<1>(a, bits, tile);
  auto run = [&](auto nv) {
    dispatch_rows<kMR>(tile.mr, [&](auto r) { bits_tile<decltype(r)::value, decltype(nv)::value>(a, bits, tile); });
  };
  if (tile.nr <= 16) return run(std::integral_constant<int, 1>{});
  run(std::integral_constant<int, 2>{});
}

}  // namespace

const KernelSet& avx512_kernels() {
  static const KernelSet ks{Isa::avx512, kMR, 24, 192, &f32_kernel, &bits_kernel, &lut_kernel,
                            {kLutNR, kLutMR, 4}};
  return ks;
}

}  // namespace sgemm_detail
}  // namespace hbn

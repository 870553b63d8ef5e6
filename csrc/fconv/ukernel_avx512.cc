// AVX-512 micro-kernels: a 14 x 32 tile = 28 zmm accumulators + 2 B vectors + 1 broadcast,
// 31 of the 32 registers. Per k step: 2 loads of B, 14 broadcasts of A, 28 FMAs, enough
// independent FMAs to cover the latency on both FMA pipes.
#include <immintrin.h>

#include "fconv/store_avx512.h"
#include "fconv/ukernel.h"

namespace hbn {
namespace sgemm_detail {
namespace {

constexpr int kMR = 14;

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

KernelSet avx512_kernels() { return KernelSet{kMR, 24, 192, &f32_kernel, &bits_kernel}; }

}  // namespace sgemm_detail
}  // namespace hbn

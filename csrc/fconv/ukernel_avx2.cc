// AVX2 + FMA micro-kernels: 6 x 16 register tiles (12 ymm accumulators + 2 B vectors + 1
// broadcast of the 16 registers), run twice to cover the 32-column panel, so the same packed
// weights serve every ISA.
#include <immintrin.h>

#include "fconv/store_avx2.h"
#include "fconv/ukernel.h"

namespace hbn {
namespace sgemm_detail {
namespace {

constexpr int kMR = 6;

template <int R>
inline void spill_half(__m256 (&acc)[R][2], float (*buf)[kNR], int h) {
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_ps(&buf[r][16 * h], acc[r][0]);
    _mm256_storeu_ps(&buf[r][16 * h + 8], acc[r][1]);
  }
}

// Computes both halves with `half(h, acc)` filling the accumulators of columns 16h..16h+15.
template <int R, typename Half>
inline void run_tile(const Tile& tile, Half half) {
  // Fetch the C tile for writing while the k loop runs (see the AVX-512 tile_loop: a C larger
  // than L2 otherwise stalls the stores at the end of every tile).
  for (int r = 0; r < R; ++r) {
    __builtin_prefetch(tile.c + r * tile.ldc, 1, 3);
    __builtin_prefetch(tile.c + r * tile.ldc + 16, 1, 3);
  }
  if (tile.nr == kNR) {
    for (int h = 0; h < 2; ++h) {
      __m256 acc[R][2];
      half(h, acc);
      store_half<R>(acc, tile, h);
    }
    return;
  }
  float buf[R][kNR];
  for (int h = 0; h < 2; ++h) {
    __m256 acc[R][2];
    if (16 * h < tile.nr) half(h, acc);
    else for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    spill_half<R>(acc, buf, h);
  }
  store_tile_scalar(&buf[0][0], kNR, tile);
}

// The accumulators are locals of the loop's own function and copied out once at the end: when
// they live in the caller's array, GCC keeps them in memory and stores all 12 every k step.
// Short tiles (one row for a batch-1 linear layer) split k over S accumulator sets so enough
// independent FMA chains cover the latency; S depends on R only, so results are deterministic.
template <int R>
constexpr int sets_for() { return R <= 1 ? 4 : (R <= 3 ? 2 : 1); }

template <int R, typename LoadB>
inline void half_loop(const ARuns& A, LoadB load_b, __m256 (&out)[R][2]) {
  constexpr int S = sets_for<R>();
  __m256 acc[S][R][2];
  for (int s = 0; s < S; ++s)
    for (int r = 0; r < R; ++r) acc[s][r][0] = acc[s][r][1] = _mm256_setzero_ps();
  const int64_t lda = A.lda;
  const int len = A.len;
  for (int run = 0; run < A.nruns; ++run) {
    const float* a = A.a + run * A.run_stride;
    const int kb = run * len;
    int k = 0;
    for (; k + S <= len; k += S) {
#pragma GCC unroll 4
      for (int s = 0; s < S; ++s) {
        __m256 b0, b1;
        load_b(kb + k + s, b0, b1);
#pragma GCC unroll 6
        for (int r = 0; r < R; ++r) {
          const __m256 av = _mm256_broadcast_ss(a + r * lda + k + s);
          acc[s][r][0] = _mm256_fmadd_ps(av, b0, acc[s][r][0]);
          acc[s][r][1] = _mm256_fmadd_ps(av, b1, acc[s][r][1]);
        }
      }
    }
    for (; k < len; ++k) {
      __m256 b0, b1;
      load_b(kb + k, b0, b1);
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) {
        const __m256 av = _mm256_broadcast_ss(a + r * lda + k);
        acc[0][r][0] = _mm256_fmadd_ps(av, b0, acc[0][r][0]);
        acc[0][r][1] = _mm256_fmadd_ps(av, b1, acc[0][r][1]);
      }
    }
  }
  for (int s = 1; s < S; ++s)
    for (int r = 0; r < R; ++r) {
      acc[0][r][0] = _mm256_add_ps(acc[0][r][0], acc[s][r][0]);
      acc[0][r][1] = _mm256_add_ps(acc[0][r][1], acc[s][r][1]);
    }
  for (int r = 0; r < R; ++r) { out[r][0] = acc[0][r][0]; out[r][1] = acc[0][r][1]; }
}

template <int R>
void f32_tile(const ARuns& a, const float* b, const Tile& tile) {
  run_tile<R>(tile, [&](int h, __m256 (&acc)[R][2]) {
    const float* bh = b + 16 * h;
    half_loop<R>(a,
                 [bh](int k, __m256& b0, __m256& b1) {
                   b0 = _mm256_loadu_ps(bh + k * kNR);
                   b1 = _mm256_loadu_ps(bh + k * kNR + 8);
                 },
                 acc);
  });
}

// Signs decoded in registers: shifting bit j of the weight word into the float sign position
// and OR-ing it onto 1.0f gives +-1 (bit 1 = -1, types.h convention).
template <int R>
void bits_tile(const ARuns& a, const uint32_t* bits, const Tile& tile) {
  run_tile<R>(tile, [&](int h, __m256 (&acc)[R][2]) {
    const int base = 16 * h;
    const __m256i sh0 = _mm256_setr_epi32(31 - base, 30 - base, 29 - base, 28 - base,
                                          27 - base, 26 - base, 25 - base, 24 - base);
    const __m256i sh1 = _mm256_sub_epi32(sh0, _mm256_set1_epi32(8));
    const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
    const __m256i one = _mm256_castps_si256(_mm256_set1_ps(1.0f));
    half_loop<R>(a,
                 [=](int k, __m256& b0, __m256& b1) {
                   const __m256i w = _mm256_set1_epi32(static_cast<int>(bits[k]));
                   b0 = _mm256_castsi256_ps(
                       _mm256_or_si256(_mm256_and_si256(_mm256_sllv_epi32(w, sh0), sign), one));
                   b1 = _mm256_castsi256_ps(
                       _mm256_or_si256(_mm256_and_si256(_mm256_sllv_epi32(w, sh1), sign), one));
                 },
                 acc);
  });
}

void f32_kernel(const ARuns& a, const float* b, const Tile& tile) {
  dispatch_rows<kMR>(tile.mr, [&](auto r) { f32_tile<decltype(r)::value>(a, b, tile); });
}

void bits_kernel(const ARuns& a, const uint32_t* bits, const Tile& tile) {
  dispatch_rows<kMR>(tile.mr, [&](auto r) { bits_tile<decltype(r)::value>(a, bits, tile); });
}

}  // namespace

KernelSet avx2_kernels() { return KernelSet{kMR, 32, 128, &f32_kernel, &bits_kernel}; }

}  // namespace sgemm_detail
}  // namespace hbn

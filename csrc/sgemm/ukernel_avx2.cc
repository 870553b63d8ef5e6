// AVX2 + FMA micro-kernels: 6 x 16 register tiles (12 ymm accumulators + 2 B vectors + 1
// broadcast of the 16 registers), run twice to cover the 32-column panel, so the same packed
// weights serve every ISA.
#include <immintrin.h>

#include "sgemm/ukernel.h"

namespace hbn {
namespace sgemm_detail {
namespace {

constexpr int kMR = 6;

// Stores one 16-column half (h) of the tile; the caller guarantees all 32 columns are valid.
template <int R>
inline void store_half(__m256 (&acc)[R][2], const Tile& tile, int h) {
  const OutputTransform* t = tile.t;
  const int64_t n0 = tile.n0 + 16 * h;
  const __m256 zero = _mm256_setzero_ps();
  __m256 sc0 = zero, sc1 = zero, bi0 = zero, bi1 = zero;
  if (t && t->scale) { sc0 = _mm256_loadu_ps(t->scale + n0); sc1 = _mm256_loadu_ps(t->scale + n0 + 8); }
  if (t && t->bias) { bi0 = _mm256_loadu_ps(t->bias + n0); bi1 = _mm256_loadu_ps(t->bias + n0 + 8); }
  const bool relu = t && t->act == Activation::relu;
  for (int r = 0; r < R; ++r) {
    float* c = tile.c + r * tile.ldc + 16 * h;
    __m256 v0 = acc[r][0], v1 = acc[r][1];
    if (tile.accumulate) {
      v0 = _mm256_add_ps(v0, _mm256_loadu_ps(c));
      v1 = _mm256_add_ps(v1, _mm256_loadu_ps(c + 8));
    }
    if (t) {
      if (t->scale) { v0 = _mm256_mul_ps(v0, sc0); v1 = _mm256_mul_ps(v1, sc1); }
      if (t->pixel_scale) {
        const __m256 ps = _mm256_set1_ps(t->pixel_scale[tile.m0 + r]);
        v0 = _mm256_mul_ps(v0, ps);
        v1 = _mm256_mul_ps(v1, ps);
      }
      if (t->bias) { v0 = _mm256_add_ps(v0, bi0); v1 = _mm256_add_ps(v1, bi1); }
      // max(v, 0) returns its second operand for NaN, matching apply_transform's !(y > 0).
      if (relu) { v0 = _mm256_max_ps(v0, zero); v1 = _mm256_max_ps(v1, zero); }
    }
    _mm256_storeu_ps(c, v0);
    _mm256_storeu_ps(c + 8, v1);
  }
}

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

// The LUT kernel (contract in ukernel.h) with 8-entry tables: 3 inputs per group, 8 columns
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

void f32_kernel(const ARuns& a, const float* b, const Tile& tile) {
  dispatch_rows<kMR>(tile.mr, [&](auto r) { f32_tile<decltype(r)::value>(a, b, tile); });
}

void bits_kernel(const ARuns& a, const uint32_t* bits, const Tile& tile) {
  dispatch_rows<kMR>(tile.mr, [&](auto r) { bits_tile<decltype(r)::value>(a, bits, tile); });
}

}  // namespace

const KernelSet& avx2_kernels() {
  static const KernelSet ks{Isa::avx2, kMR, 32, 128, &f32_kernel, &bits_kernel, &lut_kernel,
                            {kLutNR, kLutMR, 3}};
  return ks;
}

}  // namespace sgemm_detail
}  // namespace hbn

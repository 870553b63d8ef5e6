// AVX-512 VPOPCNTDQ micro-kernel: an MR x 32 tile held as MR x 4 zmm accumulators of
// 64-bit popcounts (8 output channels per register). Per K word: 4 weight loads, MR
// broadcasts of the activation word, then xor + vpopcntq + add per accumulator. No horizontal
// reduction is needed: each lane already is one output channel's count.
#include <immintrin.h>

// GCC 12 reports the intentionally undefined lanes inside some AVX-512 intrinsics
// (_mm256_undefined_si256 and friends) as maybe-uninitialized once tiles are instantiated for
// several row counts; the values are fully defined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "bconv/bconv_kernels.h"

namespace hbn {
namespace detail {
namespace {

constexpr int kNV = 4;  // zmm per tile row: 32 output channels
constexpr int kMR = 6;  // 24 accumulators + 4 weight registers + temporaries fit in 32 zmm

inline __m512 opaque(__m512 v) {
  asm("" : "+v"(v));
  return v;
}

template <int MR>
void tile_avx512(const TileArgs& t) {
  __m512i acc[MR][kNV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) acc[i][v] = _mm512_setzero_si512();

  const word_t* b = t.b;
  const int64_t b_ks = t.b_ks, seg_len = t.seg_len;
  for (int s = 0; s < t.nseg; ++s) {
    const word_t* a[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) a[i] = t.a[i] + s * t.seg_stride;
    for (int64_t k = 0; k < seg_len; ++k) {
      __m512i w[kNV];
#pragma GCC unroll 4
      for (int v = 0; v < kNV; ++v) w[v] = _mm512_loadu_si512(b + v * 8);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m512i x = _mm512_set1_epi64(static_cast<long long>(a[i][k]));
#pragma GCC unroll 4
        for (int v = 0; v < kNV; ++v)
          acc[i][v] = _mm512_add_epi64(acc[i][v], _mm512_popcnt_epi64(_mm512_xor_si512(x, w[v])));
      }
      b += b_ks;
    }
  }

  // Output stage, 16 channels at a time.
  const __m512 zero = _mm512_setzero_ps();
  const __m512i lo_halves = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __mmask16 m0 = t.cols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << t.cols) - 1u);
  const __mmask16 m1 =
      t.cols >= 32 ? 0xFFFF : (t.cols <= 16 ? 0 : static_cast<__mmask16>((1u << (t.cols - 16)) - 1u));
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    if (i >= t.rows) break;
    uint32_t half_bits[2] = {0, 0};
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __mmask16 mask = h ? m1 : m0;
      // Counts fit in 32 bits: one permute gathers the low halves of 16 qword lanes.
      const __m512i pc = _mm512_permutex2var_epi32(acc[i][2 * h], lo_halves, acc[i][2 * h + 1]);
      const __m512i dot = _mm512_sub_epi32(_mm512_loadu_si512(t.base[i] + 16 * h),
                                           _mm512_slli_epi32(pc, 1));
      __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(dot), _mm512_loadu_ps(t.scale + 16 * h));
      if (t.pixel_scale) y = _mm512_mul_ps(opaque(y), _mm512_set1_ps(t.pixel_scale[i]));
      y = _mm512_add_ps(opaque(y), _mm512_loadu_ps(t.bias + 16 * h));
      // max(y, 0) returns 0 for NaN and -0, as apply_transform's !(y > 0) does.
      if (t.relu) y = _mm512_max_ps(y, zero);
      if (t.out_f) {
        _mm512_mask_storeu_ps(t.out_f + i * t.out_rs + 16 * h, mask, y);
      } else {
        const __m512 thr = _mm512_loadu_ps(t.thr + 16 * h);
        const __mmask16 lt = _mm512_cmp_ps_mask(y, thr, _CMP_LT_OQ);
        const __mmask16 gt = _mm512_cmp_ps_mask(y, thr, _CMP_GT_OQ);
        const __m512i fm = _mm512_loadu_si512(t.flipmask + 16 * h);
        const __mmask16 f = _mm512_test_epi32_mask(fm, fm);
        half_bits[h] = static_cast<uint32_t>(((lt & ~f) | (gt & f)) & mask);
      }
    }
    if (!t.out_f) {
      const word_t bits = (static_cast<word_t>(half_bits[0]) | (static_cast<word_t>(half_bits[1]) << 16))
                          << t.bit0;
      word_t& w = t.out_b[i * t.out_rs];
      w = t.bit0 ? (w | bits) : bits;
    }
  }
}

// A partial last panel runs a shorter tile instead of computing rows it would throw away.
void tile_any(const TileArgs& t) {
  switch (t.rows) {
    case 1: return tile_avx512<1>(t);
    case 2: return tile_avx512<2>(t);
    case 3: return tile_avx512<3>(t);
    case 4: return tile_avx512<4>(t);
    case 5: return tile_avx512<5>(t);
    default: return tile_avx512<kMR>(t);
  }
}

}  // namespace

BKernel bkernel_avx512() { return {kMR, kNV * 8, tile_any}; }

}  // namespace detail
}  // namespace hbn

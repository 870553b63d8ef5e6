// AVX2 micro-kernels. AVX2 has no vector popcount, so two formulations are compiled:
//  - lut:    MR x 8 tile in ymm registers; popcount of each byte by the nibble-LUT vpshufb
//            method, accumulated in 8-bit lanes (at most 8 per step, flushed with vpsadbw
//            into 64-bit totals every 31 steps, before a byte could overflow);
//  - popcnt: MR x 4 tile of 64-bit scalar popcnt accumulators in general registers.
// The LUT one is the preferred row of the table (bconv_table.cc): on Zen 4 it runs at
// ~3.6e11 binary MACs/s at K = 2304 against ~1.8e11 for popcnt (whose own register-resident
// loop tops out at ~3e11: three integer ops per word compete for the scalar ALUs);
// benchmarks/bench_binary_kernels.py reports both.
#include <immintrin.h>

#include <algorithm>

#include "bconv/bconv_kernels.h"
#include "hbn/dispatch_rows.h"

namespace hbn {
namespace detail {
namespace {

inline __m256 opaque(__m256 v) {
  asm("" : "+x"(v));
  return v;
}

// Output stage for a tile whose popcounts sit in pc[i * 8 + j] (j < 8, int32).
template <int MR>
inline void epilogue_avx2(const TileArgs& t, const int32_t* pc) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i colmask = _mm256_cmpgt_epi32(_mm256_set1_epi32(t.cols), lane);
  const uint32_t colbits = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(colmask)));
  if (!t.out_f && t.ithr[0]) {
    for (int i = 0; i < t.rows; ++i) {
      const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pc + i * 8));
      const __m256i thr = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.ithr[i]));
      const uint32_t gt = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(p, thr))));
      const word_t bits = static_cast<word_t>((gt ^ inv_bits32(t, 0)) & colbits) << t.bit0;
      word_t& w = t.out_b[i * t.out_rs];
      w = t.bit0 ? (w | bits) : bits;
    }
    return;
  }
  const __m256 scale = _mm256_loadu_ps(t.scale), bias = _mm256_loadu_ps(t.bias);
  const __m256 zero = _mm256_setzero_ps();
  for (int i = 0; i < t.rows; ++i) {
    const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pc + i * 8));
    const __m256i base = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.base[i]));
    const __m256i dot = _mm256_sub_epi32(base, _mm256_slli_epi32(p, 1));
    __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(dot), scale);
    if (t.pixel_scale) y = _mm256_mul_ps(opaque(y), _mm256_set1_ps(t.pixel_scale[i]));
    y = _mm256_add_ps(opaque(y), bias);
    // max(y, 0) returns its second operand for NaN and for -0, matching !(y > 0) -> 0.
    if (t.relu) y = _mm256_max_ps(y, zero);
    if (t.res) {
      y = _mm256_add_ps(y, _mm256_maskload_ps(t.res + i * t.res_rs, colmask));
      if (t.res_relu) y = _mm256_max_ps(y, zero);
    }
    if (t.out_f) {
      _mm256_maskstore_ps(t.out_f + i * t.out_rs, colmask, y);
    } else {
      const __m256 thr = _mm256_loadu_ps(t.thr);
      const uint32_t lt = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(y, thr, _CMP_LT_OQ)));
      const uint32_t gt = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(y, thr, _CMP_GT_OQ)));
      const uint32_t f = static_cast<uint32_t>(
          _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(t.flipmask)))));
      const word_t bits = static_cast<word_t>(((lt & ~f) | (gt & f)) & colbits) << t.bit0;
      word_t& w = t.out_b[i * t.out_rs];
      w = t.bit0 ? (w | bits) : bits;
    }
  }
}

template <int MR>
void tile_lut(const TileArgs& t) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,  //
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low = _mm256_set1_epi8(0x0f);
  __m256i total[MR][2];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) total[i][0] = total[i][1] = _mm256_setzero_si256();

  __m256i acc[MR][2];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
  // Byte lanes gain at most 8 per K step: fold them into the totals every 31 steps.
  auto flush = [&] {
    const __m256i z = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      total[i][0] = _mm256_add_epi64(total[i][0], _mm256_sad_epu8(acc[i][0], z));
      total[i][1] = _mm256_add_epi64(total[i][1], _mm256_sad_epu8(acc[i][1], z));
      acc[i][0] = acc[i][1] = z;
    }
  };
  const word_t* b = t.b;
  const int64_t b_ks = t.b_ks;
  int64_t budget = 31;  // K steps left before the byte lanes must be flushed
  for (int s = 0; s < t.nseg; ++s) {
    const word_t* a[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) a[i] = t.a[i] + s * t.seg_stride;
    for (int64_t k = 0; k < t.seg_len;) {
      const int64_t kend = k + std::min(budget, t.seg_len - k);
      budget -= kend - k;
      for (; k < kend; ++k) {
        const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
        const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 4));
#pragma GCC unroll 8
        for (int i = 0; i < MR; ++i) {
          const __m256i x = _mm256_set1_epi64x(static_cast<long long>(a[i][k]));
          const __m256i d0 = _mm256_xor_si256(x, w0), d1 = _mm256_xor_si256(x, w1);
          const __m256i c0 = _mm256_add_epi8(
              _mm256_shuffle_epi8(lut, _mm256_and_si256(d0, low)),
              _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(d0, 4), low)));
          const __m256i c1 = _mm256_add_epi8(
              _mm256_shuffle_epi8(lut, _mm256_and_si256(d1, low)),
              _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(d1, 4), low)));
          acc[i][0] = _mm256_add_epi8(acc[i][0], c0);
          acc[i][1] = _mm256_add_epi8(acc[i][1], c1);
        }
        b += b_ks;
      }
      if (budget == 0) {
        flush();
        budget = 31;
      }
    }
  }
  flush();
  // 64-bit totals -> int32 lanes 0..7.
  alignas(32) int32_t pc[MR * 8];
  const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    const __m256i lo = _mm256_permutevar8x32_epi32(total[i][0], even);
    const __m256i hi = _mm256_permutevar8x32_epi32(total[i][1], even);
    _mm256_store_si256(reinterpret_cast<__m256i*>(pc + i * 8), _mm256_permute2x128_si256(lo, hi, 0x20));
  }
  epilogue_avx2<MR>(t, pc);
}

template <int MR, int NB>
void tile_popcnt(const TileArgs& t) {
  uint64_t acc[MR][NB] = {};
  const word_t* b = t.b;
  for (int s = 0; s < t.nseg; ++s) {
    const word_t* a[MR];
    for (int i = 0; i < MR; ++i) a[i] = t.a[i] + s * t.seg_stride;
    for (int64_t k = 0; k < t.seg_len; ++k, b += t.b_ks) {
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const word_t x = a[i][k];
#pragma GCC unroll 8
        for (int j = 0; j < NB; ++j) acc[i][j] += static_cast<uint64_t>(_mm_popcnt_u64(x ^ b[j]));
      }
    }
  }
  alignas(32) int32_t pc[MR * 8] = {};
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NB; ++j) pc[i * 8 + j] = static_cast<int32_t>(acc[i][j]);
  epilogue_avx2<MR>(t, pc);
}

// A partial last panel runs a shorter tile instead of computing rows it would throw away.
void tile_lut_any(const TileArgs& t) {
  dispatch_rows<4>(t.rows, [&](auto r) { tile_lut<decltype(r)::value>(t); });
}

}  // namespace

BKernel bkernel_avx2_lut() { return {4, 8, tile_lut_any}; }
BKernel bkernel_avx2_popcnt() { return {2, 4, tile_popcnt<2, 4>}; }

}  // namespace detail
}  // namespace hbn

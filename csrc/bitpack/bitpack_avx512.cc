// AVX-512 bit-packing: one compare per 16 channels yields 16 bits directly as a mask register.
// A folded BatchNorm's flip is applied without any per-row flip logic: x > t is exactly
// -x < -t (infinities and signed zeros included; NaN is false either way), so the sign masks
// of flipped channels and the thresholds with those signs applied are prepared once per call
// (per block of channels) and every 16 channels then cost one xor and one compare.
#include <immintrin.h>

#include <algorithm>

#include "bitpack/bitpack_impl.h"

namespace hbn {
namespace detail {

namespace {

enum Mode { kSign, kThr, kThrFlip };

// Channels per prepared block: the sign and threshold tables (8 KiB) stay in L1.
constexpr int kBlock = 1024;

// Bits of channels [c, c + 16) of one row, lanes outside `valid` neither loaded nor set.
template <int MODE>
inline uint32_t group_bits(const float* x, const float* t, const uint32_t* sg, int c, __mmask16 valid) {
  __m512 v = _mm512_maskz_loadu_ps(valid, x + c);
  if (MODE == kSign) return _mm512_mask_cmp_ps_mask(valid, v, _mm512_setzero_ps(), _CMP_LT_OQ);
  if (MODE == kThrFlip)
    v = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), _mm512_maskz_loadu_epi32(valid, sg + c)));
  return _mm512_mask_cmp_ps_mask(valid, v, _mm512_maskz_loadu_ps(valid, t + c), _CMP_LT_OQ);
}

// Rows of n (<= kBlock) channels; out rows are out_stride words apart. Word columns run in
// the outer loop so the column's thresholds and sign masks stay in registers while the rows
// stream by: one load per 16 channels (a zmm load is the scarce resource here).
template <int MODE>
void pack_block(const float* in, int64_t rows, int n, int64_t in_stride, word_t* out, int64_t out_stride,
                const float* t, const uint32_t* sg) {
  const int full_words = n / kWordBits;
  const int rest = n - full_words * kWordBits;
  // Row bands of ~16 KiB of input, so the second and later word columns of a band read it
  // from L1 instead of streaming a large map from memory once per column.
  const int64_t band = std::max<int64_t>(4, 16384 / (static_cast<int64_t>(n) * 4));
  for (int64_t r0 = 0; r0 < rows; r0 += band) {
    const int64_t r1 = std::min(rows, r0 + band);
    for (int w = 0; w < full_words; ++w) {
      const int c = w * kWordBits;
      __m512 tv[4];
      __m512i sv[4];
      for (int q = 0; q < 4; ++q) {
        tv[q] = MODE == kSign ? _mm512_setzero_ps() : _mm512_loadu_ps(t + c + 16 * q);
        sv[q] = MODE == kThrFlip ? _mm512_loadu_si512(sg + c + 16 * q) : _mm512_setzero_si512();
      }
      const float* x = in + r0 * in_stride + c;
      word_t* o = out + r0 * out_stride + w;
      for (int64_t r = r0; r < r1; ++r, x += in_stride, o += out_stride) {
        word_t bits = 0;
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          __m512 v = _mm512_loadu_ps(x + 16 * q);
          if (MODE == kThrFlip) v = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), sv[q]));
          bits |= static_cast<word_t>(_mm512_cmp_ps_mask(v, tv[q], _CMP_LT_OQ)) << (16 * q);
        }
        *o = bits;
      }
    }
    if (rest) {
      const int c0 = full_words * kWordBits;
      for (int64_t r = r0; r < r1; ++r) {
        const float* x = in + r * in_stride;
        word_t acc = 0;
        for (int q = 0; q * 16 < rest; ++q) {
          const int left = rest - q * 16;
          const __mmask16 valid = left >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << left) - 1u);
          acc |= static_cast<word_t>(group_bits<MODE>(x, t, sg, c0 + q * 16, valid)) << (q * 16);
        }
        out[r * out_stride + full_words] = acc;
      }
    }
  }
}

}  // namespace

void pack_rows_avx512(const float* in, int64_t rows, int channels, int64_t in_stride, word_t* out,
                      const float* thr, const uint8_t* flip) {
  const int64_t words = words_for(channels);
  if (!thr) return pack_block<kSign>(in, rows, channels, in_stride, out, words, nullptr, nullptr);
  if (!flip) return pack_block<kThr>(in, rows, channels, in_stride, out, words, thr, nullptr);
  alignas(64) uint32_t sg[kBlock];
  alignas(64) float ts[kBlock];
  for (int c0 = 0; c0 < channels; c0 += kBlock) {
    const int n = std::min(kBlock, channels - c0);
    for (int c = 0; c < n; c += 16) {
      const __mmask16 valid = n - c >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (n - c)) - 1u);
      const __mmask16 f = _mm_mask_test_epi8_mask(valid, _mm_maskz_loadu_epi8(valid, flip + c0 + c),
                                                  _mm_set1_epi8(-1));
      const __m512i s = _mm512_maskz_set1_epi32(f, static_cast<int>(0x80000000u));
      const __m512i t = _mm512_castps_si512(_mm512_maskz_loadu_ps(valid, thr + c0 + c));
      _mm512_store_si512(sg + c, s);
      _mm512_store_si512(ts + c, _mm512_xor_si512(t, s));
    }
    pack_block<kThrFlip>(in + c0, rows, n, in_stride, out + c0 / kWordBits, words, ts, sg);
  }
}

}  // namespace detail
}  // namespace hbn

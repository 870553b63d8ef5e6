// AVX-512 bit-packing: one compare per 16 channels yields 16 bits directly as a mask register.
#include <immintrin.h>

#include "bitpack/bitpack_impl.h"

namespace hbn {
namespace detail {

namespace {

// Bits for up to 16 channels starting at c (lanes past `valid` are neither loaded nor set).
inline uint32_t pack16(const float* x, const float* thr, const uint8_t* flip, int c,
                       __mmask16 valid) {
  const __m512 v = _mm512_maskz_loadu_ps(valid, x + c);
  if (!thr) return _mm512_mask_cmp_ps_mask(valid, v, _mm512_setzero_ps(), _CMP_LT_OQ);
  const __m512 t = _mm512_maskz_loadu_ps(valid, thr + c);
  if (!flip) return _mm512_mask_cmp_ps_mask(valid, v, t, _CMP_LT_OQ);
  // x > t is exactly -x < -t (infinities and signed zeros included; NaN is false either way),
  // so flipping the sign bits of flipped lanes leaves one compare instead of two plus mask logic.
  const __mmask16 f = _mm_mask_test_epi8_mask(valid, _mm_maskz_loadu_epi8(valid, flip + c),
                                              _mm_set1_epi8(-1));
  const __m512i sgn = _mm512_maskz_set1_epi32(f, static_cast<int>(0x80000000u));
  const __m512 vs = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), sgn));
  const __m512 ts = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(t), sgn));
  return _mm512_mask_cmp_ps_mask(valid, vs, ts, _CMP_LT_OQ);
}

}  // namespace

void pack_rows_avx512(const float* in, int64_t rows, int channels, int64_t in_stride, word_t* out,
                      const float* thr, const uint8_t* flip) {
  const int64_t words = words_for(channels);
  const int full = channels / 16;
  const int rem = channels % 16;
  const __mmask16 rem_mask = static_cast<__mmask16>((1u << rem) - 1u);
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in + r * in_stride;
    word_t* o = out + r * words;
    word_t acc = 0;
    int g = 0;
    for (; g < full; ++g) {
      acc |= static_cast<word_t>(pack16(x, thr, flip, g * 16, 0xFFFF)) << ((g & 3) * 16);
      if ((g & 3) == 3) {
        o[g >> 2] = acc;
        acc = 0;
      }
    }
    if (rem) acc |= static_cast<word_t>(pack16(x, thr, flip, g * 16, rem_mask)) << ((g & 3) * 16);
    if (channels % kWordBits) o[words - 1] = acc;
  }
}

}  // namespace detail
}  // namespace hbn

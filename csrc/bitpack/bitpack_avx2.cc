// AVX2 bit-packing: compare 8 channels, movemask gives their 8 bits.
#include <immintrin.h>

#include "bitpack/bitpack_impl.h"

namespace hbn {
namespace detail {

namespace {

inline uint32_t pack8(const float* x, const float* thr, const uint8_t* flip, int c) {
  const __m256 v = _mm256_loadu_ps(x + c);
  if (!thr) return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ)));
  const __m256 t = _mm256_loadu_ps(thr + c);
  const uint32_t lt = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(v, t, _CMP_LT_OQ)));
  if (!flip) return lt;
  const uint32_t gt = static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(v, t, _CMP_GT_OQ)));
  // 8 flip bytes -> one bit each (nonzero byte = flipped).
  uint64_t fb;
  __builtin_memcpy(&fb, flip + c, 8);
  const __m128i fz = _mm_cmpeq_epi8(_mm_cvtsi64_si128(static_cast<long long>(fb)), _mm_setzero_si128());
  const uint32_t f = ~static_cast<uint32_t>(_mm_movemask_epi8(fz)) & 0xFFu;
  return (lt & ~f) | (gt & f);
}

}  // namespace

void pack_rows_avx2(const float* in, int64_t rows, int channels, int64_t in_stride, word_t* out,
                    const float* thr, const uint8_t* flip) {
  const int64_t words = words_for(channels);
  const int full = channels / 8;
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in + r * in_stride;
    word_t* o = out + r * words;
    word_t acc = 0;
    int g = 0;
    for (; g < full; ++g) {
      acc |= static_cast<word_t>(pack8(x, thr, flip, g * 8)) << ((g & 7) * 8);
      if ((g & 7) == 7) {
        o[g >> 3] = acc;
        acc = 0;
      }
    }
    // Fewer than 8 channels left: no vector load may touch memory past the row.
    for (int c = g * 8; c < channels; ++c) {
      if (pack_bit(x[c], thr, flip, c)) acc |= word_t{1} << (c % kWordBits);
    }
    if (channels % kWordBits) o[words - 1] = acc;
  }
}

}  // namespace detail
}  // namespace hbn

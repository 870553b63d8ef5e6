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
  pack_rows_grouped<8>(in, rows, channels, in_stride, out, thr, flip,
                        [thr, flip](const float* x, int c) { return pack8(x, thr, flip, c); });
}

}  // namespace detail
}  // namespace hbn

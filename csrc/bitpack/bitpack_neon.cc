// NEON bit-packing: compare 4 channels, AND with lane weights {1,2,4,8} and add across lanes.
#include <arm_neon.h>

#include "bitpack/bitpack_impl.h"

namespace hbn {
namespace detail {

namespace {

inline uint32_t pack4(const float* x, const float* thr, const uint8_t* flip, int c) {
  static const uint32_t kLane[4] = {1, 2, 4, 8};
  const uint32x4_t lane = vld1q_u32(kLane);
  const float32x4_t v = vld1q_f32(x + c);
  uint32x4_t m;
  if (!thr) {
    m = vcltq_f32(v, vdupq_n_f32(0.0f));
  } else {
    const float32x4_t t = vld1q_f32(thr + c);
    m = vcltq_f32(v, t);
    if (flip) {
      const uint32x4_t gt = vcgtq_f32(v, t);
      const uint32_t f[4] = {flip[c] ? ~0u : 0u, flip[c + 1] ? ~0u : 0u, flip[c + 2] ? ~0u : 0u,
                             flip[c + 3] ? ~0u : 0u};
      m = vbslq_u32(vld1q_u32(f), gt, m);
    }
  }
  return vaddvq_u32(vandq_u32(m, lane));
}

}  // namespace

void pack_rows_neon(const float* in, int64_t rows, int channels, int64_t in_stride, word_t* out,
                    const float* thr, const uint8_t* flip) {
  const int64_t words = words_for(channels);
  const int full = channels / 4;
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in + r * in_stride;
    word_t* o = out + r * words;
    word_t acc = 0;
    int g = 0;
    for (; g < full; ++g) {
      acc |= static_cast<word_t>(pack4(x, thr, flip, g * 4)) << ((g & 15) * 4);
      if ((g & 15) == 15) {
        o[g >> 4] = acc;
        acc = 0;
      }
    }
    for (int c = g * 4; c < channels; ++c) {
      if (pack_bit(x[c], thr, flip, c)) acc |= word_t{1} << (c % kWordBits);
    }
    if (channels % kWordBits) o[words - 1] = acc;
  }
}

}  // namespace detail
}  // namespace hbn

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
  pack_rows_grouped<4>(in, rows, channels, in_stride, out, thr, flip,
                        [thr, flip](const float* x, int c) { return pack4(x, thr, flip, c); });
}

}  // namespace detail
}  // namespace hbn

// qgemm row for ARMv8.2 dot products. SDOT multiplies int8 by int8 only (u8 x s8 needs the
// i8mm extension), so each activation is shifted to int8: a - 128 (an exclusive or with 0x80),
// and the shift is added back exactly at the end: sum a*w = sum (a-128)*w + 128 * sum w
// (wsum, computed at packing). One SDOT by element takes a row's 4 values (one 32-bit lane of
// a 16-byte load covering 4 groups) against 4 channels x 4 k of weights. Every partial sum is
// within int32: |(a-128)*w| <= 128 * 127, and the final D fits (qgemm.h).
#include <arm_neon.h>

#include <cstring>

#include "hbn/dispatch_rows.h"
#include "qconv/qgemm.h"
#include "qconv/qgemm_rows.h"

namespace hbn {
namespace qgemm {
namespace {

constexpr int kMR = 4;

template <int R>
void tile_r(const uint8_t* a, int64_t lda, const int8_t* panel, int64_t k4, const int32_t* wsum, int32_t* acc) {
  int32x4_t c[R][4];
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < 4; ++i) c[r][i] = vdupq_n_s32(0);
  const uint8x16_t bias = vdupq_n_u8(0x80);
  const int64_t groups = k4 / kQKGroup;
  int64_t g = 0;
  for (; g + 4 <= groups; g += 4) {
    int8x16_t av[R];
    for (int r = 0; r < R; ++r)
      av[r] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(a + r * lda + g * kQKGroup), bias));
#define HBN_Q_DOT(gg)                                                                  \
  do {                                                                                 \
    const int8_t* p = panel + (g + gg) * kQKGroup * kQNR;                              \
    const int8x16_t w0 = vld1q_s8(p), w1 = vld1q_s8(p + 16), w2 = vld1q_s8(p + 32),    \
                    w3 = vld1q_s8(p + 48);                                             \
    for (int r = 0; r < R; ++r) {                                                      \
      c[r][0] = vdotq_laneq_s32(c[r][0], w0, av[r], gg);                               \
      c[r][1] = vdotq_laneq_s32(c[r][1], w1, av[r], gg);                               \
      c[r][2] = vdotq_laneq_s32(c[r][2], w2, av[r], gg);                               \
      c[r][3] = vdotq_laneq_s32(c[r][3], w3, av[r], gg);                               \
    }                                                                                  \
  } while (0)
    HBN_Q_DOT(0);
    HBN_Q_DOT(1);
    HBN_Q_DOT(2);
    HBN_Q_DOT(3);
#undef HBN_Q_DOT
  }
  for (; g < groups; ++g) {  // the last groups one at a time: no read past K4
    const int8_t* p = panel + g * kQKGroup * kQNR;
    const int8x16_t w0 = vld1q_s8(p), w1 = vld1q_s8(p + 16), w2 = vld1q_s8(p + 32), w3 = vld1q_s8(p + 48);
    for (int r = 0; r < R; ++r) {
      uint32_t v;
      std::memcpy(&v, a + r * lda + g * kQKGroup, sizeof v);
      const int8x16_t av = vreinterpretq_s8_u8(veorq_u8(vreinterpretq_u8_u32(vdupq_n_u32(v)), bias));
      c[r][0] = vdotq_s32(c[r][0], w0, av);
      c[r][1] = vdotq_s32(c[r][1], w1, av);
      c[r][2] = vdotq_s32(c[r][2], w2, av);
      c[r][3] = vdotq_s32(c[r][3], w3, av);
    }
  }
  for (int i = 0; i < 4; ++i) {
    const int32x4_t back = vshlq_n_s32(vld1q_s32(wsum + 4 * i), 7);  // 128 * sum w
    for (int r = 0; r < R; ++r) vst1q_s32(acc + r * kQNR + 4 * i, vaddq_s32(c[r][i], back));
  }
}

void tile(const uint8_t* a, int64_t lda, int rows, const int8_t* panel, int64_t k4, const int32_t* wsum,
          int32_t* acc) {
  dispatch_rows<kMR>(rows, [&](auto r) { tile_r<decltype(r)::value>(a, lda, panel, k4, wsum, acc); });
}

}  // namespace

QKernel qkernel_dotprod() { return {kMR, tile, nullptr, store_rows_impl, quantize_impl, store_bits_impl}; }

}  // namespace qgemm
}  // namespace hbn

// qgemm row for plain NEON (ARMv8.0): widening multiply-accumulates. A weight group (16
// channels x 4 k, interleaved) is split by VLD4 into one register per k holding the 16
// channels, widened to int16; the row's 4 values, widened to int16, are multiplied in by
// element (SMLAL / SMLAL2 by lane) into 4 int32 accumulators per row. int16 x int16 products
// and int32 sums are exact. 4 rows: 16 accumulators + 8 weight registers.
#include <arm_neon.h>

#include <cstring>

#include "hbn/dispatch_rows.h"
#include "qconv/qgemm.h"
#include "qconv/qgemm_rows.h"

namespace hbn {
namespace qgemm {
namespace {

constexpr int kMR = 4;

#define HBN_Q_MLAL(t)                                                    \
  do {                                                                   \
    c[r][0] = vmlal_lane_s16(c[r][0], vget_low_s16(wl[t]), av, t);       \
    c[r][1] = vmlal_high_lane_s16(c[r][1], wl[t], av, t);                \
    c[r][2] = vmlal_lane_s16(c[r][2], vget_low_s16(wh[t]), av, t);       \
    c[r][3] = vmlal_high_lane_s16(c[r][3], wh[t], av, t);                \
  } while (0)

template <int R>
void tile_r(const uint8_t* a, int64_t lda, const int8_t* panel, int64_t k4, int32_t* acc) {
  int32x4_t c[R][4];
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < 4; ++i) c[r][i] = vdupq_n_s32(0);
  const int64_t groups = k4 / kQKGroup;
  for (int64_t g = 0; g < groups; ++g) {
    const int8x16x4_t w = vld4q_s8(panel + g * kQKGroup * kQNR);  // w.val[t]: k = t, channels 0..15
    int16x8_t wl[4], wh[4];
    for (int t = 0; t < 4; ++t) {
      wl[t] = vmovl_s8(vget_low_s8(w.val[t]));
      wh[t] = vmovl_high_s8(w.val[t]);
    }
    for (int r = 0; r < R; ++r) {
      uint32_t v;
      std::memcpy(&v, a + r * lda + g * kQKGroup, sizeof v);
      const int16x4_t av = vreinterpret_s16_u16(vget_low_u16(vmovl_u8(vcreate_u8(v))));
      HBN_Q_MLAL(0);
      HBN_Q_MLAL(1);
      HBN_Q_MLAL(2);
      HBN_Q_MLAL(3);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < 4; ++i) vst1q_s32(acc + r * kQNR + 4 * i, c[r][i]);
}
#undef HBN_Q_MLAL

void tile(const uint8_t* a, int64_t lda, int rows, const int8_t* panel, int64_t k4, const int32_t*,
          int32_t* acc) {
  dispatch_rows<kMR>(rows, [&](auto r) { tile_r<decltype(r)::value>(a, lda, panel, k4, acc); });
}

}  // namespace

QKernel qkernel_neon() { return {kMR, tile, nullptr, store_rows_impl, quantize_impl, store_bits_impl}; }

}  // namespace qgemm
}  // namespace hbn

// NEON micro-kernel: a 4 x 4 tile, two output channels per q register. vcnt gives per-byte
// popcounts (<= 8), accumulated in 8-bit lanes for at most 31 K steps (<= 248, no overflow),
// then widened with pairwise adds (vpaddl) into 64-bit totals.
#include <arm_neon.h>

#include "bconv/bconv_kernels.h"

namespace hbn {
namespace detail {
namespace {

constexpr int kMR = 4, kNV = 2;  // 4 rows x 4 channels

void tile_neon(const TileArgs& t) {
  uint64x2_t total[kMR][kNV];
  for (int i = 0; i < kMR; ++i)
    for (int v = 0; v < kNV; ++v) total[i][v] = vdupq_n_u64(0);
  uint8x16_t acc[kMR][kNV];
  for (int i = 0; i < kMR; ++i)
    for (int v = 0; v < kNV; ++v) acc[i][v] = vdupq_n_u8(0);
  // Byte lanes gain at most 8 per K step: widen them into the totals every 31 steps.
  auto flush = [&] {
    for (int i = 0; i < kMR; ++i)
      for (int v = 0; v < kNV; ++v) {
        total[i][v] = vaddq_u64(total[i][v], vpaddlq_u32(vpaddlq_u16(vpaddlq_u8(acc[i][v]))));
        acc[i][v] = vdupq_n_u8(0);
      }
  };
  const word_t* b = t.b;
  int steps = 0;
  for (int s = 0; s < t.nseg; ++s) {
    const word_t* a[kMR];
    for (int i = 0; i < kMR; ++i) a[i] = t.a[i] + s * t.seg_stride;
    for (int64_t k = 0; k < t.seg_len; ++k) {
      const uint8x16_t w0 = vreinterpretq_u8_u64(vld1q_u64(b));
      const uint8x16_t w1 = vreinterpretq_u8_u64(vld1q_u64(b + 2));
#pragma GCC unroll 4
      for (int i = 0; i < kMR; ++i) {
        const uint8x16_t x = vreinterpretq_u8_u64(vdupq_n_u64(a[i][k]));
        acc[i][0] = vaddq_u8(acc[i][0], vcntq_u8(veorq_u8(x, w0)));
        acc[i][1] = vaddq_u8(acc[i][1], vcntq_u8(veorq_u8(x, w1)));
      }
      b += t.b_ks;
      if (++steps == 31) {
        flush();
        steps = 0;
      }
    }
  }
  flush();
  int32_t pc[kMR][kNV * 2];
  for (int i = 0; i < kMR; ++i)
    for (int v = 0; v < kNV; ++v) {
      pc[i][2 * v] = static_cast<int32_t>(vgetq_lane_u64(total[i][v], 0));
      pc[i][2 * v + 1] = static_cast<int32_t>(vgetq_lane_u64(total[i][v], 1));
    }
  tile_epilogue_ref(t, &pc[0][0], kNV * 2);
}

}  // namespace

BKernel bkernel_neon() { return {kMR, kNV * 2, tile_neon}; }

}  // namespace detail
}  // namespace hbn

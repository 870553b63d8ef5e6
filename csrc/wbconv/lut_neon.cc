// NEON table-lookup WeightBin kernel (contract in wbconv/lut.h), pixels in the lanes.
//
// NEON has no 16-lane float permute, and `tbl` serves only the 4 floats of one vector (modelled
// at 1.0x the FMA peak on N1 with 4-input groups: docs/kernels.md). So the lanes hold PIXELS and
// the lookup is by address: for each group of 4 consecutive k and each 4 output pixels of the
// tile, the 16 signed sums of those inputs (one per pixel lane) are a 256-byte table in L1, built
// once per tile for every group of the K block; then each output column c with sign pattern p
// does acc_c += T[p]: `ldr q, [table, idx]` + `fadd`, 16 MACs per fadd where an FMA does 4. The
// index panel holds one byte per column and group, the pattern pre-scaled by 16 (the entry's
// byte offset), extracted from a 64-bit load with one integer op (ubfx) off the vector pipes.
// Modelled with llvm-mca-19 (the loop as GCC compiles it, measured in docs/kernels.md).
//
// Tile: up to 8 pixels (two 4-pixel tables per group, one index serves both) x the panel's
// columns, 8 columns (16 accumulators) at a time over all groups of the K block.
#include <arm_neon.h>

#include <cstring>
#include <vector>

#include "wbconv/lut.h"

namespace hbn {
namespace sgemm_detail {
namespace {

constexpr int kLutNR = 256;  // columns per panel: the tables are built once per panel and row tile
constexpr int kLutMR = 8;    // pixels per tile (two 4-lane tables)
constexpr int kGroup = 4;

// x[i] = inputs k + i of pixels 4h..4h+3 of the tile (0 past kc or past the tile's rows).
inline void load_inputs(const float* a, int64_t lda, int kc, int k, int rows, float32x4_t (&x)[4]) {
  if (rows == 4 && k + 4 <= kc) {
    // A 4x4 transpose: rows of 4 k become vectors of 4 pixels.
    const float32x4_t r0 = vld1q_f32(a + k), r1 = vld1q_f32(a + lda + k);
    const float32x4_t r2 = vld1q_f32(a + 2 * lda + k), r3 = vld1q_f32(a + 3 * lda + k);
    const float32x4_t t0 = vtrn1q_f32(r0, r1), t1 = vtrn2q_f32(r0, r1);
    const float32x4_t t2 = vtrn1q_f32(r2, r3), t3 = vtrn2q_f32(r2, r3);
    const float64x2_t d0 = vreinterpretq_f64_f32(t0), d1 = vreinterpretq_f64_f32(t1);
    const float64x2_t d2 = vreinterpretq_f64_f32(t2), d3 = vreinterpretq_f64_f32(t3);
    x[0] = vreinterpretq_f32_f64(vtrn1q_f64(d0, d2));
    x[1] = vreinterpretq_f32_f64(vtrn1q_f64(d1, d3));
    x[2] = vreinterpretq_f32_f64(vtrn2q_f64(d0, d2));
    x[3] = vreinterpretq_f32_f64(vtrn2q_f64(d1, d3));
    return;
  }
  alignas(16) float v[4][4] = {};
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < 4 && k + i < kc; ++i) v[i][r] = a[r * lda + k + i];
  for (int i = 0; i < 4; ++i) x[i] = vld1q_f32(v[i]);
}

// The 16 entries of one group: entry p = sum_i (bit i of p ? -x_i : x_i). With u = x0 + x1,
// v = x0 - x1, w = x2 + x3, z = x2 - x3, the low two bits pick {u, -v, v, -u} and the high two
// {w, -z, z, -w}; entry 15 - p = -entry p.
inline void build_table(const float32x4_t (&x)[4], float* t) {
  const float32x4_t u = vaddq_f32(x[0], x[1]), v = vsubq_f32(x[0], x[1]);
  const float32x4_t w = vaddq_f32(x[2], x[3]), z = vsubq_f32(x[2], x[3]);
  const float32x4_t e0 = vaddq_f32(u, w), e4 = vsubq_f32(u, z), e8 = vaddq_f32(u, z), e12 = vsubq_f32(u, w);
  const float32x4_t e2 = vaddq_f32(v, w), e6 = vsubq_f32(v, z), e10 = vaddq_f32(v, z), e14 = vsubq_f32(v, w);
  vst1q_f32(t + 4 * 0, e0), vst1q_f32(t + 4 * 15, vnegq_f32(e0));
  vst1q_f32(t + 4 * 4, e4), vst1q_f32(t + 4 * 11, vnegq_f32(e4));
  vst1q_f32(t + 4 * 8, e8), vst1q_f32(t + 4 * 7, vnegq_f32(e8));
  vst1q_f32(t + 4 * 12, e12), vst1q_f32(t + 4 * 3, vnegq_f32(e12));
  vst1q_f32(t + 4 * 2, e2), vst1q_f32(t + 4 * 13, vnegq_f32(e2));
  vst1q_f32(t + 4 * 6, e6), vst1q_f32(t + 4 * 9, vnegq_f32(e6));
  vst1q_f32(t + 4 * 10, e10), vst1q_f32(t + 4 * 5, vnegq_f32(e10));
  vst1q_f32(t + 4 * 14, e14), vst1q_f32(t + 4 * 1, vnegq_f32(e14));
}

// P = 4-pixel halves (1 or 2): a tile of at most 4 rows builds and looks up one table per group.
template <int P>
void lut_tile(const float* a, int64_t lda, int kc, const uint32_t* panel, const Tile& tile) {
  constexpr int CW = 16 / P;  // columns per pass: 16 accumulators
  const int groups = (kc + kGroup - 1) / kGroup;
  // The tables of every group of this K block: groups x P x 16 entries x 4 floats.
  thread_local std::vector<float> tables;
  const size_t need = static_cast<size_t>(groups) * P * 64;
  if (tables.size() < need) tables.resize(need);
  float* tab = tables.data();
  for (int g = 0; g < groups; ++g)
    for (int h = 0; h < P; ++h) {
      float32x4_t x[4];
      const int rows = tile.mr - 4 * h < 4 ? tile.mr - 4 * h : 4;
      load_inputs(a + 4 * h * lda, lda, kc, kGroup * g, rows, x);
      build_table(x, tab + (g * P + h) * 64);
    }
  const uint8_t* idx = reinterpret_cast<const uint8_t*>(panel);  // [group][kLutNR] bytes
  const char* tb = reinterpret_cast<const char*>(tab);
  alignas(16) float out[kLutMR][kLutNR];
  for (int c0 = 0; c0 < tile.nr; c0 += CW) {
    float32x4_t acc[CW][P];
    for (int j = 0; j < CW; ++j)
      for (int h = 0; h < P; ++h) acc[j][h] = vdupq_n_f32(0.0f);
    const uint8_t* ip = idx + c0;
    const char* t = tb;
#pragma GCC unroll 1
    for (int g = 0; g < groups; ++g, ip += kLutNR, t += P * 256) {
      uint64_t w[CW / 8];
      std::memcpy(w, ip, CW);
#pragma GCC unroll 16
      for (int j = 0; j < CW; ++j) {
        const uint64_t off = (w[j / 8] >> (8 * (j % 8))) & 0xffu;
        for (int h = 0; h < P; ++h)
          acc[j][h] = vaddq_f32(acc[j][h], vld1q_f32(reinterpret_cast<const float*>(t + 256 * h + off)));
      }
    }
    // acc[j][h] lane r = pixel 4h + r, column c0 + j: 4x4 transposes into rows of out.
    for (int h = 0; h < P; ++h)
      for (int j = 0; j < CW; j += 4) {
        const float32x4_t t0 = vtrn1q_f32(acc[j][h], acc[j + 1][h]), t1 = vtrn2q_f32(acc[j][h], acc[j + 1][h]);
        const float32x4_t t2 = vtrn1q_f32(acc[j + 2][h], acc[j + 3][h]), t3 = vtrn2q_f32(acc[j + 2][h], acc[j + 3][h]);
        const float64x2_t d0 = vreinterpretq_f64_f32(t0), d1 = vreinterpretq_f64_f32(t1);
        const float64x2_t d2 = vreinterpretq_f64_f32(t2), d3 = vreinterpretq_f64_f32(t3);
        vst1q_f32(&out[4 * h + 0][c0 + j], vreinterpretq_f32_f64(vtrn1q_f64(d0, d2)));
        vst1q_f32(&out[4 * h + 1][c0 + j], vreinterpretq_f32_f64(vtrn1q_f64(d1, d3)));
        vst1q_f32(&out[4 * h + 2][c0 + j], vreinterpretq_f32_f64(vtrn2q_f64(d0, d2)));
        vst1q_f32(&out[4 * h + 3][c0 + j], vreinterpretq_f32_f64(vtrn2q_f64(d1, d3)));
      }
  }
  store_tile_scalar(&out[0][0], kLutNR, tile);
}

void lut_kernel(const float* a, int64_t lda, int kc, const uint32_t* panel, const Tile& tile) {
  if (tile.mr <= 4) lut_tile<1>(a, lda, kc, panel, tile);
  else lut_tile<2>(a, lda, kc, panel, tile);
}

}  // namespace

LutKernel lut_kernel_neon() {
  LutLayout layout{kLutNR, kLutMR, kGroup};
  layout.index_bytes = true;
  return LutKernel{&lut_kernel, layout, true};
}

}  // namespace sgemm_detail
}  // namespace hbn

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
// Modelled per call (benchmarks/arm, docs/kernels.md): conv layers 1.5-2.5x the NEON fp32 conv
// on Neoverse-N1, 1.0-1.7x on Cortex-A55. The tables of an 8-pixel tile for kc = 256 are 32 KB:
// within N1's 64 KB L1, all of a 32 KB-L1 A55's (which llvm-mca does not see; a smaller K block
// for such cores would need a K-block field in LutLayout).
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

// The K loop of an 8-pixel tile for 8 columns (P = 2): res[2j + h] = the sum over groups of
// table h's entry for column j's pattern (pixels 4h..4h+3). Hand-scheduled inline assembly:
// GCC's code loads each lookup and adds it at once and recomputes every second-table address,
// which an in-order core pays for in full. Here the fadds add the PREVIOUS group's lookups (in
// v16-v31) while this group's are loaded into the same registers, each fadd paired with a load,
// the index bytes extracted two columns ahead and the next group's index word loaded half a
// group ahead; two groups per iteration alternate the word and table-pointer registers, so no
// register is copied. llvm-mca: 9.4 cycles per group on N1 (27 MACs/cycle, 3.4x the FMA peak),
// 27 on A55 (9.5 MACs/cycle, 1.8x). Reads the index word one group past the last (pack_lut pads).
void lookup8(const char* tab, const uint8_t* ip, int groups, float (&res)[16][4]) {
  const char* t0 = tab;
  const char* t1 = tab + 256;
  const char *t2, *t3;
  const uint8_t* end = ip + static_cast<int64_t>(groups) * kLutNR;
  uint64_t w0, w1, i0, i1, i2, i3, i4, i5, i6, i7;
  asm volatile(
      "ldr %[w0], [%[ip]]\n"
      "and %[i0], %[w0], #0xff\nubfx %[i1], %[w0], #8, #8\n"
      // Accumulators v0-v15 and the first group's "previous lookups" v16-v31 start at 0.
      "movi v0.16b, #0\nmovi v1.16b, #0\nmovi v2.16b, #0\nmovi v3.16b, #0\n"
      "movi v4.16b, #0\nmovi v5.16b, #0\nmovi v6.16b, #0\nmovi v7.16b, #0\n"
      "movi v8.16b, #0\nmovi v9.16b, #0\nmovi v10.16b, #0\nmovi v11.16b, #0\n"
      "movi v12.16b, #0\nmovi v13.16b, #0\nmovi v14.16b, #0\nmovi v15.16b, #0\n"
      "movi v16.16b, #0\nmovi v17.16b, #0\nmovi v18.16b, #0\nmovi v19.16b, #0\n"
      "movi v20.16b, #0\nmovi v21.16b, #0\nmovi v22.16b, #0\nmovi v23.16b, #0\n"
      "movi v24.16b, #0\nmovi v25.16b, #0\nmovi v26.16b, #0\nmovi v27.16b, #0\n"
      "movi v28.16b, #0\nmovi v29.16b, #0\nmovi v30.16b, #0\nmovi v31.16b, #0\n"
      "0:\n"
      // Body A: group g (index word w0, tables t0/t1); loads group g+1's word into w1.
      "fadd v0.4s, v0.4s, v16.4s\nldr q16, [%[t0], %[i0]]\nfadd v1.4s, v1.4s, v17.4s\nldr q17, [%[t1], %[i0]]\n"
      "ubfx %[i2], %[w0], #16, #8\nadd %[t2], %[t0], #512\n"
      "fadd v2.4s, v2.4s, v18.4s\nldr q18, [%[t0], %[i1]]\nfadd v3.4s, v3.4s, v19.4s\nldr q19, [%[t1], %[i1]]\n"
      "ubfx %[i3], %[w0], #24, #8\nadd %[t3], %[t1], #512\n"
      "fadd v4.4s, v4.4s, v20.4s\nldr q20, [%[t0], %[i2]]\nfadd v5.4s, v5.4s, v21.4s\nldr q21, [%[t1], %[i2]]\n"
      "ubfx %[i4], %[w0], #32, #8\nldr %[w1], [%[ip], #256]\nadd %[ip], %[ip], #256\n"
      "fadd v6.4s, v6.4s, v22.4s\nldr q22, [%[t0], %[i3]]\nfadd v7.4s, v7.4s, v23.4s\nldr q23, [%[t1], %[i3]]\n"
      "ubfx %[i5], %[w0], #40, #8\ncmp %[ip], %[end]\n"
      "fadd v8.4s, v8.4s, v24.4s\nldr q24, [%[t0], %[i4]]\nfadd v9.4s, v9.4s, v25.4s\nldr q25, [%[t1], %[i4]]\n"
      "ubfx %[i6], %[w0], #48, #8\n"
      "fadd v10.4s, v10.4s, v26.4s\nldr q26, [%[t0], %[i5]]\nfadd v11.4s, v11.4s, v27.4s\nldr q27, [%[t1], %[i5]]\n"
      "lsr %[i7], %[w0], #56\n"
      "fadd v12.4s, v12.4s, v28.4s\nldr q28, [%[t0], %[i6]]\nfadd v13.4s, v13.4s, v29.4s\nldr q29, [%[t1], %[i6]]\n"
      "and %[i0], %[w1], #0xff\n"
      "fadd v14.4s, v14.4s, v30.4s\nldr q30, [%[t0], %[i7]]\nfadd v15.4s, v15.4s, v31.4s\nldr q31, [%[t1], %[i7]]\n"
      "ubfx %[i1], %[w1], #8, #8\n"
      "b.eq 1f\n"
      // Body B: group g+1 (w1, tables t2/t3).
      "fadd v0.4s, v0.4s, v16.4s\nldr q16, [%[t2], %[i0]]\nfadd v1.4s, v1.4s, v17.4s\nldr q17, [%[t3], %[i0]]\n"
      "ubfx %[i2], %[w1], #16, #8\nadd %[t0], %[t2], #512\n"
      "fadd v2.4s, v2.4s, v18.4s\nldr q18, [%[t2], %[i1]]\nfadd v3.4s, v3.4s, v19.4s\nldr q19, [%[t3], %[i1]]\n"
      "ubfx %[i3], %[w1], #24, #8\nadd %[t1], %[t3], #512\n"
      "fadd v4.4s, v4.4s, v20.4s\nldr q20, [%[t2], %[i2]]\nfadd v5.4s, v5.4s, v21.4s\nldr q21, [%[t3], %[i2]]\n"
      "ubfx %[i4], %[w1], #32, #8\nldr %[w0], [%[ip], #256]\nadd %[ip], %[ip], #256\n"
      "fadd v6.4s, v6.4s, v22.4s\nldr q22, [%[t2], %[i3]]\nfadd v7.4s, v7.4s, v23.4s\nldr q23, [%[t3], %[i3]]\n"
      "ubfx %[i5], %[w1], #40, #8\ncmp %[ip], %[end]\n"
      "fadd v8.4s, v8.4s, v24.4s\nldr q24, [%[t2], %[i4]]\nfadd v9.4s, v9.4s, v25.4s\nldr q25, [%[t3], %[i4]]\n"
      "ubfx %[i6], %[w1], #48, #8\n"
      "fadd v10.4s, v10.4s, v26.4s\nldr q26, [%[t2], %[i5]]\nfadd v11.4s, v11.4s, v27.4s\nldr q27, [%[t3], %[i5]]\n"
      "lsr %[i7], %[w1], #56\n"
      "fadd v12.4s, v12.4s, v28.4s\nldr q28, [%[t2], %[i6]]\nfadd v13.4s, v13.4s, v29.4s\nldr q29, [%[t3], %[i6]]\n"
      "and %[i0], %[w0], #0xff\n"
      "fadd v14.4s, v14.4s, v30.4s\nldr q30, [%[t2], %[i7]]\nfadd v15.4s, v15.4s, v31.4s\nldr q31, [%[t3], %[i7]]\n"
      "ubfx %[i1], %[w0], #8, #8\n"
      "b.ne 0b\n"
      "1:\n"
      // The last group's lookups.
      "fadd v0.4s, v0.4s, v16.4s\nfadd v1.4s, v1.4s, v17.4s\nfadd v2.4s, v2.4s, v18.4s\nfadd v3.4s, v3.4s, v19.4s\n"
      "fadd v4.4s, v4.4s, v20.4s\nfadd v5.4s, v5.4s, v21.4s\nfadd v6.4s, v6.4s, v22.4s\nfadd v7.4s, v7.4s, v23.4s\n"
      "fadd v8.4s, v8.4s, v24.4s\nfadd v9.4s, v9.4s, v25.4s\nfadd v10.4s, v10.4s, v26.4s\nfadd v11.4s, v11.4s, v27.4s\n"
      "fadd v12.4s, v12.4s, v28.4s\nfadd v13.4s, v13.4s, v29.4s\nfadd v14.4s, v14.4s, v30.4s\nfadd v15.4s, v15.4s, v31.4s\n"
      "stp q0, q1, [%[res]]\nstp q2, q3, [%[res], #32]\nstp q4, q5, [%[res], #64]\nstp q6, q7, [%[res], #96]\n"
      "stp q8, q9, [%[res], #128]\nstp q10, q11, [%[res], #160]\nstp q12, q13, [%[res], #192]\nstp q14, q15, [%[res], #224]\n"
      : [ip] "+r"(ip), [t0] "+r"(t0), [t1] "+r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3), [w0] "=&r"(w0),
        [w1] "=&r"(w1), [i0] "=&r"(i0), [i1] "=&r"(i1), [i2] "=&r"(i2), [i3] "=&r"(i3), [i4] "=&r"(i4),
        [i5] "=&r"(i5), [i6] "=&r"(i6), [i7] "=&r"(i7)
      : [end] "r"(end), [res] "r"(res)
      : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12",
        "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26",
        "v27", "v28", "v29", "v30", "v31");
}

// The K loop in intrinsics (tiles of at most 4 pixels: P = 1, 16 columns).
template <int P>
void lookup_intrinsics(const char* tb, const uint8_t* ip, int groups, float32x4_t (&acc)[16 / P][P]) {
  constexpr int CW = 16 / P;
  for (int j = 0; j < CW; ++j)
    for (int h = 0; h < P; ++h) acc[j][h] = vdupq_n_f32(0.0f);
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
}

// Stores the tile's sums out[r][0..nr): raw for an earlier K block, through the transform in
// apply_transform's order for the last, 4 columns per vector and branch-free per element as the
// NEON SGEMM store is (a missing scale multiplies by 1, a missing bias adds -0, both exact; ReLU
// as a compare mask that writes +0 where !(y > 0)). Column tails and bit outputs go scalar.
void store_sums(const float (&out)[kLutMR][kLutNR], const Tile& tile) {
  const OutputTransform* t = tile.t;
  if (t && t->out_threshold) return store_tile_scalar(&out[0][0], kLutNR, tile);
  const int n4 = tile.nr / 4 * 4;
  const uint32x4_t keep = vdupq_n_u32(t && t->act == Activation::relu ? 0u : ~0u);
  const float32x4_t one = vdupq_n_f32(1.0f), nzero = vdupq_n_f32(-0.0f), zero = vdupq_n_f32(0.0f);
  for (int r = 0; r < tile.mr; ++r) {
    float* c = tile.c + r * tile.ldc;
    const float ps = t && t->pixel_scale ? t->pixel_scale[tile.m0 + r] : 1.0f;
    // A fused residual add (OutputTransform::residual) after the ReLU, then its own ReLU.
    const float* res = t && t->residual ? t->residual + (tile.m0 + r) * t->residual_ld + tile.n0 : nullptr;
    const bool res_relu = res && t->residual_act == Activation::relu;
    for (int j = 0; j < n4; j += 4) {
      float32x4_t v = vld1q_f32(&out[r][j]);
      if (tile.accumulate) v = vaddq_f32(v, vld1q_f32(c + j));
      if (t) {
        const float32x4_t sc = t->scale ? vld1q_f32(t->scale + tile.n0 + j) : one;
        const float32x4_t bi = t->bias ? vld1q_f32(t->bias + tile.n0 + j) : nzero;
        v = vaddq_f32(vmulq_n_f32(vmulq_f32(v, sc), ps), bi);
        const uint32x4_t m = vorrq_u32(vcgtq_f32(v, zero), keep);
        v = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), m));
        if (res) {
          v = vaddq_f32(v, vld1q_f32(res + j));
          if (res_relu) v = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), vcgtq_f32(v, zero)));
        }
      }
      vst1q_f32(c + j, v);
    }
    for (int j = n4; j < tile.nr; ++j) {
      float v = out[r][j];
      if (tile.accumulate) v += c[j];
      if (t) v = apply_transform(*t, v, tile.m0 + r, tile.n0 + j);
      c[j] = v;
    }
  }
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
    if constexpr (P == 2) {
      alignas(16) float res[16][4];
      lookup8(tb, idx + c0, groups, res);
      for (int j = 0; j < CW; ++j)
        for (int h = 0; h < P; ++h) acc[j][h] = vld1q_f32(res[P * j + h]);
    } else {
      lookup_intrinsics<P>(tb, idx + c0, groups, acc);
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
  store_sums(out, tile);
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

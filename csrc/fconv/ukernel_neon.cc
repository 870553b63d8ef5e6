// NEON (aarch64) micro-kernels: 6 x 16 register tiles (24 q accumulators + 4 B vectors), run
// twice to cover the 32-column panel. The binary-weight tile decodes signs in registers with
// one test-bits + one bit-select per 4 columns (see choose_bits_strategy for when it is used).
//
// The 6- and 5-row float tiles' K loops are inline assembly: 24 accumulators + 4 B vectors leave
// four registers for the six A values of a step, which GCC could not fit (it kept three
// accumulators on the stack, a load + store pair per step each). The loops below reuse A
// registers once their rows are done and keep loads between FMAs for in-order cores.
#include <arm_neon.h>

#include <cstring>

#include "fconv/ukernel.h"

namespace hbn {
namespace sgemm_detail {
namespace {

constexpr int kMR = 6;

// Stores a full-width tile (all 32 columns valid) from buf[R][kNR]: apply_transform's
// operations in its order, 4 columns per register (a first-layer conv has kc = 147, where the
// scalar store was a quarter of the tile's instructions). Branch-free per row, so an in-order
// core overlaps the eight column groups: a missing scale or pixel scale multiplies by 1 and a
// missing bias adds -0 (both exact for every value, -0 included); ReLU keeps y where y > 0 and
// writes +0 otherwise (NaN and -0 included), as the definition does; without ReLU the mask is
// all ones. Partial tiles take the scalar store.
template <int R, bool Accumulate>
void store_tile_neon(const float* buf, const Tile& tile) {
  const OutputTransform* t = tile.t;
  float32x4_t sc[kNR / 4], bi[kNR / 4];
  for (int q = 0; q < kNR / 4; ++q) {
    sc[q] = t && t->scale ? vld1q_f32(t->scale + tile.n0 + 4 * q) : vdupq_n_f32(1.0f);
    bi[q] = t && t->bias ? vld1q_f32(t->bias + tile.n0 + 4 * q) : vdupq_n_f32(-0.0f);
  }
  const uint32x4_t keep = vdupq_n_u32(t && t->act == Activation::relu ? 0u : ~0u);
  const float32x4_t zero = vdupq_n_f32(0.0f);
  for (int r = 0; r < R; ++r) {
    float* c = tile.c + r * tile.ldc;
    const float* acc = buf + r * kNR;
    const float ps = t && t->pixel_scale ? t->pixel_scale[tile.m0 + r] : 1.0f;
#pragma GCC unroll 8
    for (int q = 0; q < kNR / 4; ++q) {
      float32x4_t v = vld1q_f32(acc + 4 * q);
      if constexpr (Accumulate) v = vaddq_f32(v, vld1q_f32(c + 4 * q));
      v = vaddq_f32(vmulq_n_f32(vmulq_f32(v, sc[q]), ps), bi[q]);
      const uint32x4_t m = vorrq_u32(vcgtq_f32(v, zero), keep);
      vst1q_f32(c + 4 * q, vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(v), m)));
    }
  }
}

template <int R>
void store_tile(const float* buf, const Tile& tile) {
  // A fused residual add takes the scalar store (apply_transform) too.
  if (tile.nr != kNR || (tile.t && (tile.t->out_threshold || tile.t->residual))) store_tile_scalar(buf, kNR, tile);
  else if (tile.accumulate) store_tile_neon<R, true>(buf, tile);
  else store_tile_neon<R, false>(buf, tile);
}

// Shared loop: load_b(k, h, b) fills b[0..3] with columns 16h .. 16h + 15 of row k.
template <int R, typename LoadB>
inline void neon_tile(const ARuns& A, LoadB load_b, const Tile& tile) {
  float buf[R][kNR];
  for (int h = 0; h < 2; ++h) {
    float32x4_t acc[R][4];
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < 4; ++q) acc[r][q] = vdupq_n_f32(0.0f);
    if (16 * h < tile.nr) {
      for (int run = 0; run < A.nruns; ++run) {
        const float* a = A.a + run * A.run_stride;
        const int kb = run * A.len;
        for (int k = 0; k < A.len; ++k) {
          float32x4_t b[4];
          load_b(kb + k, h, b);
          for (int r = 0; r < R; ++r) {
            const float av = a[r * A.lda + k];
            for (int q = 0; q < 4; ++q) acc[r][q] = vfmaq_n_f32(acc[r][q], b[q], av);
          }
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < 4; ++q) vst1q_f32(&buf[r][16 * h + 4 * q], acc[r][q]);
  }
  store_tile<R>(&buf[0][0], tile);
}

#define HBN_FMLA_ROW(a0, a1, a2, a3, av)            \
  "fmla " a0 ".4s, v0.4s, " av ".s[0]\n\t"          \
  "fmla " a1 ".4s, v1.4s, " av ".s[0]\n\t"          \
  "fmla " a2 ".4s, v2.4s, " av ".s[0]\n\t"          \
  "fmla " a3 ".4s, v3.4s, " av ".s[0]\n\t"
// One K step at A offset `ao` bytes and B offset `bo` bytes (bo + 16, + 32, + 48 for the other
// quarters): A loads sit between FMAs so an in-order core issues them beside the arithmetic.
#define HBN_STEP6(ao, b0, b1, b2, b3)                                     \
  "ldr q0, [%[pb], #" b0 "]\n\t"                                          \
  "ldr q1, [%[pb], #" b1 "]\n\t"                                          \
  "ldr s4, [%[p0], #" ao "]\n\t"                                          \
  "ldr q2, [%[pb], #" b2 "]\n\t"                                          \
  "ldr q3, [%[pb], #" b3 "]\n\t"                                          \
  "ldr s5, [%[p1], #" ao "]\n\t"                                          \
  "ldr s6, [%[p2], #" ao "]\n\t"                                          \
  "fmla v8.4s, v0.4s, v4.s[0]\n\t" "fmla v9.4s, v1.4s, v4.s[0]\n\t"       \
  "ldr s7, [%[p3], #" ao "]\n\t"                                          \
  "fmla v10.4s, v2.4s, v4.s[0]\n\t" "fmla v11.4s, v3.4s, v4.s[0]\n\t"     \
  "fmla v12.4s, v0.4s, v5.s[0]\n\t" "fmla v13.4s, v1.4s, v5.s[0]\n\t"     \
  "ldr s4, [%[p4], #" ao "]\n\t"                                          \
  "fmla v14.4s, v2.4s, v5.s[0]\n\t" "fmla v15.4s, v3.4s, v5.s[0]\n\t"     \
  "fmla v16.4s, v0.4s, v6.s[0]\n\t" "fmla v17.4s, v1.4s, v6.s[0]\n\t"     \
  "ldr s5, [%[p5], #" ao "]\n\t"                                          \
  "fmla v18.4s, v2.4s, v6.s[0]\n\t" "fmla v19.4s, v3.4s, v6.s[0]\n\t"     \
  HBN_FMLA_ROW("v20", "v21", "v22", "v23", "v7")                          \
  HBN_FMLA_ROW("v24", "v25", "v26", "v27", "v4")                          \
  HBN_FMLA_ROW("v28", "v29", "v30", "v31", "v5")
// The same for five rows (accumulators v8..v27): row 4 reuses row 0's A register.
#define HBN_STEP5(ao, b0, b1, b2, b3)                                     \
  "ldr q0, [%[pb], #" b0 "]\n\t"                                          \
  "ldr q1, [%[pb], #" b1 "]\n\t"                                          \
  "ldr s4, [%[p0], #" ao "]\n\t"                                          \
  "ldr q2, [%[pb], #" b2 "]\n\t"                                          \
  "ldr q3, [%[pb], #" b3 "]\n\t"                                          \
  "ldr s5, [%[p1], #" ao "]\n\t"                                          \
  "ldr s6, [%[p2], #" ao "]\n\t"                                          \
  "fmla v8.4s, v0.4s, v4.s[0]\n\t" "fmla v9.4s, v1.4s, v4.s[0]\n\t"       \
  "ldr s7, [%[p3], #" ao "]\n\t"                                          \
  "fmla v10.4s, v2.4s, v4.s[0]\n\t" "fmla v11.4s, v3.4s, v4.s[0]\n\t"     \
  "fmla v12.4s, v0.4s, v5.s[0]\n\t" "fmla v13.4s, v1.4s, v5.s[0]\n\t"     \
  "ldr s4, [%[p4], #" ao "]\n\t"                                          \
  "fmla v14.4s, v2.4s, v5.s[0]\n\t" "fmla v15.4s, v3.4s, v5.s[0]\n\t"     \
  HBN_FMLA_ROW("v16", "v17", "v18", "v19", "v6")                          \
  HBN_FMLA_ROW("v20", "v21", "v22", "v23", "v7")                          \
  HBN_FMLA_ROW("v24", "v25", "v26", "v27", "v4")
#define HBN_ADVANCE(a, b)                                                  \
  "add %[pb], %[pb], #" b "\n\t"                                          \
  "add %[p0], %[p0], #" a "\n\t" "add %[p1], %[p1], #" a "\n\t"           \
  "add %[p2], %[p2], #" a "\n\t" "add %[p3], %[p3], #" a "\n\t"           \
  "add %[p4], %[p4], #" a "\n\t" "add %[p5], %[p5], #" a "\n\t"

#define HBN_TILE_BODY(STEP) \
      "movi v8.16b, #0\n\t" "movi v9.16b, #0\n\t" "movi v10.16b, #0\n\t" "movi v11.16b, #0\n\t" \
      "movi v12.16b, #0\n\t" "movi v13.16b, #0\n\t" "movi v14.16b, #0\n\t" "movi v15.16b, #0\n\t" \
      "movi v16.16b, #0\n\t" "movi v17.16b, #0\n\t" "movi v18.16b, #0\n\t" "movi v19.16b, #0\n\t" \
      "movi v20.16b, #0\n\t" "movi v21.16b, #0\n\t" "movi v22.16b, #0\n\t" "movi v23.16b, #0\n\t" \
      "movi v24.16b, #0\n\t" "movi v25.16b, #0\n\t" "movi v26.16b, #0\n\t" "movi v27.16b, #0\n\t" \
      "movi v28.16b, #0\n\t" "movi v29.16b, #0\n\t" "movi v30.16b, #0\n\t" "movi v31.16b, #0\n\t" \
      "cbz %[nruns], 4f\n\t" \
      "2:\n\t" \
      "lsr %[k], %[len], #2\n\t" \
      "cbz %[k], 5f\n\t" \
      "1:\n\t" \
      STEP("0", "0", "16", "32", "48") \
      STEP("4", "128", "144", "160", "176") \
      STEP("8", "256", "272", "288", "304") \
      STEP("12", "384", "400", "416", "432") \
      HBN_ADVANCE("16", "512") \
      "subs %[k], %[k], #1\n\t" \
      "b.ne 1b\n\t" \
      "5:\n\t" \
      "ands %[k], %[len], #3\n\t" \
      "b.eq 3f\n\t" \
      "6:\n\t" \
      STEP("0", "0", "16", "32", "48") \
      HBN_ADVANCE("4", "128") \
      "subs %[k], %[k], #1\n\t" \
      "b.ne 6b\n\t" \
      "3:\n\t" \
      "add %[p0], %[p0], %[adv]\n\t" \
      "add %[p1], %[p1], %[adv]\n\t" \
      "add %[p2], %[p2], %[adv]\n\t" \
      "add %[p3], %[p3], %[adv]\n\t" \
      "add %[p4], %[p4], %[adv]\n\t" \
      "add %[p5], %[p5], %[adv]\n\t" \
      "subs %[nruns], %[nruns], #1\n\t" \
      "b.ne 2b\n\t" \
      "4:\n\t"
#define HBN_TILE_OPERANDS \
      : [p0] "+r"(p0), [p1] "+r"(p1), [p2] "+r"(p2), [p3] "+r"(p3), [p4] "+r"(p4), [p5] "+r"(p5), \
        [pb] "+r"(pb), [nruns] "+r"(nruns), [k] "+r"(k), [out] "+r"(out) \
      : [len] "r"(len), [adv] "r"(adv), [ld] "r"(static_cast<int64_t>(kNR * sizeof(float))) \
      : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", \
        "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", \
        "v25", "v26", "v27", "v28", "v29", "v30", "v31"

// R (5 or 6) rows x 16 columns (half h of the panel) over every run, accumulators v8.. (row r,
// quarter q in v(8 + 4r + q)), B in v0..v3, A in v4..v7; the result goes to buf[R][kNR]. K goes
// four steps per iteration (immediate offsets, one pointer update per four steps: LLVM's A55
// model charges a post-incremented load an extra issue cycle), then one at a time.
template <int R>
void f32_tile_half(const ARuns& A, const float* b, int h, float* buf) {
  const float* p0 = A.a;
  const float* p1 = p0 + A.lda;
  const float* p2 = p1 + A.lda;
  const float* p3 = p2 + A.lda;
  const float* p4 = p3 + A.lda;
  const float* p5 = R == 6 ? p4 + A.lda : p4;  // unused by the 5-row loop
  const float* pb = b + 16 * h;
  // After a run, the row pointers have moved len floats: step on to the next run's start.
  const int64_t adv = (A.run_stride - A.len) * static_cast<int64_t>(sizeof(float));
  int64_t nruns = A.nruns, k = 0;
  const int64_t len = A.len;
  float* out = buf + 16 * h;
  if constexpr (R == 6) {
    asm volatile(HBN_TILE_BODY(HBN_STEP6)
      "st1 {v8.4s, v9.4s, v10.4s, v11.4s}, [%[out]], %[ld]\n\t"
      "st1 {v12.4s, v13.4s, v14.4s, v15.4s}, [%[out]], %[ld]\n\t"
      "st1 {v16.4s, v17.4s, v18.4s, v19.4s}, [%[out]], %[ld]\n\t"
      "st1 {v20.4s, v21.4s, v22.4s, v23.4s}, [%[out]], %[ld]\n\t"
      "st1 {v24.4s, v25.4s, v26.4s, v27.4s}, [%[out]], %[ld]\n\t"
      "st1 {v28.4s, v29.4s, v30.4s, v31.4s}, [%[out]], %[ld]\n\t"
                 HBN_TILE_OPERANDS);
  } else {
    asm volatile(HBN_TILE_BODY(HBN_STEP5)
      "st1 {v8.4s, v9.4s, v10.4s, v11.4s}, [%[out]], %[ld]\n\t"
      "st1 {v12.4s, v13.4s, v14.4s, v15.4s}, [%[out]], %[ld]\n\t"
      "st1 {v16.4s, v17.4s, v18.4s, v19.4s}, [%[out]], %[ld]\n\t"
      "st1 {v20.4s, v21.4s, v22.4s, v23.4s}, [%[out]], %[ld]\n\t"
      "st1 {v24.4s, v25.4s, v26.4s, v27.4s}, [%[out]], %[ld]\n\t"
                 HBN_TILE_OPERANDS);
  }
}
#undef HBN_TILE_OPERANDS
#undef HBN_TILE_BODY
#undef HBN_ADVANCE
#undef HBN_STEP5
#undef HBN_STEP6
#undef HBN_FMLA_ROW

template <int R>
void f32_tile(const ARuns& a, const float* b, const Tile& tile) {
  if constexpr (R >= 5) {
    float buf[R][kNR];
    for (int h = 0; h < 2; ++h) {
      if (16 * h < tile.nr) {
        f32_tile_half<R>(a, b, h, &buf[0][0]);
      } else {
        for (int r = 0; r < R; ++r) std::memset(&buf[r][16 * h], 0, 16 * sizeof(float));
      }
    }
    store_tile<R>(&buf[0][0], tile);
    return;
  }
  neon_tile<R>(a,
               [b](int k, int h, float32x4_t* v) {
                 const float* row = b + k * kNR + 16 * h;
                 for (int q = 0; q < 4; ++q) v[q] = vld1q_f32(row + 4 * q);
               },
               tile);
}

// Bit j of bits[k] selects -1 for column j (types.h convention): test each lane's bit, then
// select -1 or +1.
template <int R>
void bits_tile(const ARuns& a, const uint32_t* bits, const Tile& tile) {
  const float32x4_t one = vdupq_n_f32(1.0f), neg = vdupq_n_f32(-1.0f);
  uint32x4_t lane[4];
  for (int q = 0; q < 4; ++q) {
    const uint32_t m[4] = {1u << (4 * q), 2u << (4 * q), 4u << (4 * q), 8u << (4 * q)};
    lane[q] = vld1q_u32(m);
  }
  neon_tile<R>(a,
               [&](int k, int h, float32x4_t* v) {
                 const uint32x4_t w = vdupq_n_u32(bits[k] >> (16 * h));
                 for (int q = 0; q < 4; ++q) v[q] = vbslq_f32(vtstq_u32(w, lane[q]), neg, one);
               },
               tile);
}

void f32_kernel(const ARuns& a, const float* b, const Tile& tile) {
  dispatch_rows<kMR>(tile.mr, [&](auto r) { f32_tile<decltype(r)::value>(a, b, tile); });
}

void bits_kernel(const ARuns& a, const uint32_t* bits, const Tile& tile) {
  dispatch_rows<kMR>(tile.mr, [&](auto r) { bits_tile<decltype(r)::value>(a, bits, tile); });
}

}  // namespace

KernelSet neon_kernels() { return KernelSet{kMR, 32, 256, &f32_kernel, &bits_kernel, true}; }

}  // namespace sgemm_detail
}  // namespace hbn

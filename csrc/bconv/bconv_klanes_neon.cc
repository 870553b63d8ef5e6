// NEON micro-kernel on the K-in-lanes weight layout (bconv_klanes.h): a tile is 4 output
// pixels x 4 output channels, one q register per (pixel, channel) accumulator holding eight
// 16-bit partial counts of the same dot product. Per step (two K words): one q load per pixel
// (its two words straight from the activation row, no replication), one four-register `ld1`
// of the four channels' two words, then eor + cnt + uadalp per pixel x channel: 3 vector ops
// per 128 binary MACs, the peak loop's mix, and 53 instructions per 2048 MACs (the
// 2 x 16 broadcast tile of bconv_neon.cc needs 61 per 2048).
//
// The loop is software-pipelined within a K segment: a pixel's next q register is loaded as
// soon as its four eors have issued, the weights after the last group's, so an in-order core
// finds them ready a step later (llvm-mca: 100% of the binary peak on N1, 81% on A55; `ldr q`
// weight loads would be 89% on A55 but 4 more instructions per step). A segment's last step
// loads nothing (no read past a segment), and an odd segment's last word is a `ldr d` step
// against weights whose second word is zero.
//
// After the K loop the 16 accumulators reduce to 4 quads (pixel: 4 channels) with 14 pairwise
// adds and 4 widenings; the output stage (OutStage below) works on those quads. One call covers
// every channel group of the tile's channels.
#include <arm_neon.h>

#include <algorithm>

#include "bconv/bconv_kernels.h"
#include "bconv/bconv_klanes.h"

namespace hbn {
namespace detail {
namespace {

constexpr int kP = kKlanesPixels;  // 4
constexpr int kC = kKlanesChannels;  // 4
// Steps per K loop call: a reduced 16-bit lane sums 8 lanes of <= 16 per step: 511 * 128 <= 65535.
constexpr int kMaxSteps = 511;

#define HBN_E(t, p, c) "eor %[" t "].16b, v" p ".16b, v" c ".16b\n\t"
#define HBN_C(t) "cnt %[" t "].16b, %[" t "].16b\n\t"
// op: uadalp (accumulate) or uaddlp (a segment's first step initialises the accumulators).
#define HBN_U(op, a, t) op " v" a ".8h, %[" t "].16b\n\t"
// Pixel p's group: its activations (v16 + p) against the four weight registers v20-v23 into
// accumulators a0..a3; `ld` (the reload of that pixel's register, or the weights') sits between
// the eors and the counts.
#define HBN_PIX(op, p, a0, a1, a2, a3, t0, t1, t2, t3, ld)                                        \
  HBN_E(t0, p, "20") HBN_E(t1, p, "21") HBN_E(t2, p, "22") HBN_E(t3, p, "23") ld                \
  HBN_C(t0) HBN_C(t1) HBN_C(t2) HBN_C(t3) HBN_U(op, a0, t0) HBN_U(op, a1, t1) HBN_U(op, a2, t2) \
  HBN_U(op, a3, t3)
#define HBN_STEPX(op, l0, l1, l2, l3)                                                    \
  HBN_PIX(op, "16", "0", "1", "2", "3", "t0", "t1", "t2", "t3", l0)                      \
  HBN_PIX(op, "17", "4", "5", "6", "7", "t4", "t5", "t6", "t7", l1)                      \
  HBN_PIX(op, "18", "8", "9", "10", "11", "t0", "t1", "t2", "t3", l2)                    \
  HBN_PIX(op, "19", "12", "13", "14", "15", "t4", "t5", "t6", "t7", l3)
#define HBN_LDW "ld1 {v20.16b, v21.16b, v22.16b, v23.16b}, [%[b]], #64\n\t"
// A step that loads the next step's q (or, for an odd segment's last word, d) registers at off.
#define HBN_LD(r, v, p) "ldr " r v ", [%[a" p "], %[off]]\n\t"
#define HBN_STEP_L(op, r) \
  HBN_STEPX(op, HBN_LD(r, "16", "0"), HBN_LD(r, "17", "1"), HBN_LD(r, "18", "2"), HBN_LD(r, "19", "3") HBN_LDW)
#define HBN_STEP_N HBN_STEPX("uadalp", "", "", "", "")

// nseg segments of len (>= 2) words (pixel p's segment s at a[p] + s * sb bytes; weights
// streamed from b, (len + 1) / 2 steps of 64 bytes per segment): counts of pixel p, channels 0-3
// in r[p]. Each step loads the next one's registers, across segment ends too (the segment
// offset `so` moves on before a segment's last step); only the call's last step loads nothing,
// so nothing past the field is read.
__attribute__((always_inline)) inline void kl_loop(const word_t* a0, const word_t* a1, const word_t* a2,
                                                   const word_t* a3, const word_t* b, int nseg, int64_t len,
                                                   int64_t sb, uint32x4_t (&r)[kP]) {
  const int64_t np = len / 2;  // >= 1 full steps per segment
  int64_t off, so, k;
  uint32x4_t t4, t5, t6, t7;
  asm volatile(
      "mov %[off], #0\n\t"
      "mov %[so], #0\n\t"
      "ldr q16, [%[a0]]\n\t" "ldr q17, [%[a1]]\n\t" "ldr q18, [%[a2]]\n\t" "ldr q19, [%[a3]]\n\t"
      HBN_LDW
      "subs %[k], %[np], #1\n\t"
      "b.eq 7f\n\t"
      // two or more full steps: the first initialises the accumulators
      "add %[off], %[off], #16\n\t"
      HBN_STEP_L("uaddlp", "q")
      "subs %[k], %[k], #1\n\t"
      "b.ne 1f\n\t"
      "b 4f\n\t"
      "7:\n\t"
      "movi v0.16b, #0\n\t" "movi v1.16b, #0\n\t" "movi v2.16b, #0\n\t" "movi v3.16b, #0\n\t"
      "movi v4.16b, #0\n\t" "movi v5.16b, #0\n\t" "movi v6.16b, #0\n\t" "movi v7.16b, #0\n\t"
      "movi v8.16b, #0\n\t" "movi v9.16b, #0\n\t" "movi v10.16b, #0\n\t" "movi v11.16b, #0\n\t"
      "movi v12.16b, #0\n\t" "movi v13.16b, #0\n\t" "movi v14.16b, #0\n\t" "movi v15.16b, #0\n\t"
      "b 4f\n\t"
      "2:\n\t"  // segment start: its first registers are loaded
      "subs %[k], %[np], #1\n\t"
      "b.eq 4f\n\t"
      "1:\n\t"
      "add %[off], %[off], #16\n\t"
      HBN_STEP_L("uadalp", "q")
      "subs %[k], %[k], #1\n\t"
      "b.ne 1b\n\t"
      "4:\n\t"  // the segment's last full step
      "tbnz %[len], #0, 5f\n\t"
      "add %[so], %[so], %[sb]\n\t"
      "mov %[off], %[so]\n\t"
      "subs %w[nseg], %w[nseg], #1\n\t"
      "b.eq 8f\n\t"
      HBN_STEP_L("uadalp", "q")
      "b 2b\n\t"
      "5:\n\t"  // odd segment: the last full step loads the last word
      "add %[off], %[off], #16\n\t"
      HBN_STEP_L("uadalp", "d")
      "add %[so], %[so], %[sb]\n\t"
      "mov %[off], %[so]\n\t"
      "subs %w[nseg], %w[nseg], #1\n\t"
      "b.eq 8f\n\t"
      HBN_STEP_L("uadalp", "q")
      "b 2b\n\t"
      "8:\n\t"
      HBN_STEP_N
      // 16 accumulators -> pixel 0/1 (t4) and 2/3 (t5) x channels 0-3 in 16-bit lanes.
      "addp %[t0].8h, v0.8h, v1.8h\n\t" "addp %[t1].8h, v2.8h, v3.8h\n\t"
      "addp %[t2].8h, v4.8h, v5.8h\n\t" "addp %[t3].8h, v6.8h, v7.8h\n\t"
      "addp %[t4].8h, v8.8h, v9.8h\n\t" "addp %[t5].8h, v10.8h, v11.8h\n\t"
      "addp %[t6].8h, v12.8h, v13.8h\n\t" "addp %[t7].8h, v14.8h, v15.8h\n\t"
      "addp %[t0].8h, %[t0].8h, %[t1].8h\n\t" "addp %[t1].8h, %[t2].8h, %[t3].8h\n\t"
      "addp %[t2].8h, %[t4].8h, %[t5].8h\n\t" "addp %[t3].8h, %[t6].8h, %[t7].8h\n\t"
      "addp %[t4].8h, %[t0].8h, %[t1].8h\n\t" "addp %[t5].8h, %[t2].8h, %[t3].8h\n\t"
      "uxtl %[t0].4s, %[t4].4h\n\t" "uxtl2 %[t1].4s, %[t4].8h\n\t"
      "uxtl %[t2].4s, %[t5].4h\n\t" "uxtl2 %[t3].4s, %[t5].8h\n\t"
      : [b] "+r"(b), [nseg] "+r"(nseg), [off] "=&r"(off), [so] "=&r"(so), [k] "=&r"(k), [t0] "=&w"(r[0]),
        [t1] "=&w"(r[1]), [t2] "=&w"(r[2]), [t3] "=&w"(r[3]), [t4] "=&w"(t4), [t5] "=&w"(t5), [t6] "=&w"(t6),
        [t7] "=&w"(t7)
      : [a0] "r"(a0), [a1] "r"(a1), [a2] "r"(a2), [a3] "r"(a3), [np] "r"(np), [len] "r"(len), [sb] "r"(sb)
      : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15",
        "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "memory", "cc");
}
#undef HBN_STEP_N
#undef HBN_STEP_L
#undef HBN_LD
#undef HBN_STEPX
#undef HBN_LDW
#undef HBN_PIX
#undef HBN_U
#undef HBN_C
#undef HBN_E

enum Mode { kFloat, kBitsF, kBitsI };

// The tile's fields in locals (the output stores could alias TileArgs otherwise), and the output
// stage of one channel group: channels [j, j + 4), n of them real, from the quads pc[i] (pixel
// i). Float rows are stored; bit rows' 4 bits go into bits[i] at position (bit0 + j) % 64 and
// reach memory with put_words. Kept apart from the K loop so it can take more operands.
template <int MODE, bool RELU>
struct OutStage {
  const int32_t* base[kP];
  const int32_t* ithr[kP];
  const float *scale, *bias, *thr, *pixel_scale;
  const int32_t* flipmask;
  float* out_f;
  word_t* out_b;
  int64_t out_rs;
  int rows, bit0;
  const TileArgs* t;
  word_t bits[kP] = {0, 0, 0, 0};

  explicit OutStage(const TileArgs& a)
      : scale(a.scale), bias(a.bias), thr(a.thr), pixel_scale(a.pixel_scale), flipmask(a.flipmask),
        out_f(a.out_f), out_b(a.out_b), out_rs(a.out_rs), rows(a.rows), bit0(a.bit0), t(&a) {
    for (int i = 0; i < kP; ++i) {
      base[i] = a.base[i];
      ithr[i] = a.ithr[i];
    }
  }

  // Pixel i's 4 bits at 4 i of a 16-bit value, from the 4 pixels' compare masks.
  static inline uint32_t mask_bits(const uint32x4_t (&m)[kP]) {
    const uint32_t w[4] = {1, 2, 4, 8};
    const uint32x4_t l = vld1q_u32(w);
    uint32x4_t acc = vandq_u32(m[0], l);
    acc = vorrq_u32(acc, vandq_u32(m[1], vshlq_n_u32(l, 4)));
    acc = vorrq_u32(acc, vandq_u32(m[2], vshlq_n_u32(l, 8)));
    acc = vorrq_u32(acc, vandq_u32(m[3], vshlq_n_u32(l, 12)));
    return vaddvq_u32(acc);
  }

  inline void add_bits(int j, int n, uint32_t v16) {
    const int sh = (bit0 + j) % 64;
    const uint32_t keep = (1u << n) - 1u;
#pragma GCC unroll 4
    for (int i = 0; i < kP; ++i) bits[i] |= static_cast<word_t>((v16 >> (4 * i)) & keep) << sh;
  }

  inline void group(int j, int n, const uint32x4_t (&pc)[kP]) {
    uint32x4_t m[kP];
    if (MODE == kBitsI) {
#pragma GCC unroll 4
      for (int i = 0; i < kP; ++i) m[i] = vcgtq_s32(vreinterpretq_s32_u32(pc[i]), vld1q_s32(ithr[i] + j));
      add_bits(j, n, mask_bits(m) ^ ((inv_bits32(*t, j) & 0xFu) * 0x1111u));
      return;
    }
    const float32x4_t scale4 = vld1q_f32(scale + j), bias4 = vld1q_f32(bias + j), zero = vdupq_n_f32(0.0f);
    float32x4_t y[kP];
#pragma GCC unroll 4
    for (int i = 0; i < kP; ++i) {
      // base - 2 * pc, exact in int32, then exactly apply_transform's float operations.
      const int32x4_t dot = vmlsq_n_s32(vld1q_s32(base[i] + j), vreinterpretq_s32_u32(pc[i]), 2);
      y[i] = vmulq_f32(vcvtq_f32_s32(dot), scale4);
      if (pixel_scale) y[i] = vmulq_n_f32(y[i], pixel_scale[i < rows ? i : 0]);
      y[i] = vaddq_f32(y[i], bias4);
      // ReLU as !(y > 0) -> +0: maxNum(y, +0) is +0 for -0 and for a (quiet) NaN.
      if (RELU) y[i] = vmaxnmq_f32(y[i], zero);
    }
    if (MODE == kFloat) {
      float* o = out_f + j;
      if (rows == kP && n == kC) {
#pragma GCC unroll 4
        for (int i = 0; i < kP; ++i) vst1q_f32(o + i * out_rs, y[i]);
        return;
      }
      for (int i = 0; i < rows; ++i) {
        float tmp[kC];
        vst1q_f32(tmp, y[i]);
        for (int l = 0; l < n; ++l) o[i * out_rs + l] = tmp[l];
      }
      return;
    }
    const float32x4_t thr4 = vld1q_f32(thr + j);
    const uint32x4_t flip = vreinterpretq_u32_s32(vld1q_s32(flipmask + j));
#pragma GCC unroll 4
    for (int i = 0; i < kP; ++i) m[i] = vbslq_u32(flip, vcgtq_f32(y[i], thr4), vcltq_f32(y[i], thr4));
    add_bits(j, n, mask_bits(m));
  }

  // Bit rows: word w of the tile's output from bits[]; the tile's first word is ORed into when
  // the tile starts inside it.
  inline void put_words(int w) {
    for (int i = 0; i < rows; ++i) {
      word_t& o = out_b[i * out_rs + w];
      o = (w == 0 && bit0) ? (o | bits[i]) : bits[i];
    }
    for (int i = 0; i < kP; ++i) bits[i] = 0;
  }
};

template <int MODE, bool RELU>
void tile_kl(const TileArgs& t) {
  OutStage<MODE, RELU> out(t);
  const word_t *const a0 = t.a[0], *const a1 = t.a[1], *const a2 = t.a[2], *const a3 = t.a[3];
  const word_t* b = t.b;
  const int64_t len = t.seg_len, stride = t.seg_stride, sb = stride * static_cast<int64_t>(sizeof(word_t));
  const int nseg = t.nseg, cols = t.cols, bit0 = t.bit0;
  const int64_t steps_seg = (len + 1) / 2;
  const int64_t gw = kklanes_group_words(nseg, len);  // words per channel group
  const bool whole = nseg * steps_seg <= kMaxSteps;
  for (int j = 0; j < cols; j += kC, b += gw) {
    uint32x4_t pc[kP];
    if (whole) {
      kl_loop(a0, a1, a2, a3, b, nseg, len, sb, pc);
    } else {
      // Long receptive fields: pieces of at most kMaxSteps steps within a segment (a piece
      // boundary falls on a step, so only a segment's last piece has its odd word).
      for (int i = 0; i < kP; ++i) pc[i] = vdupq_n_u32(0);
      for (int s = 0; s < nseg; ++s)
        for (int64_t k0 = 0, n = 0; k0 < len; k0 += n) {
          n = std::min<int64_t>(len - k0, 2 * kMaxSteps);
          if (len - k0 - n == 1) n -= 2;  // no one-word piece (kl_loop takes >= 2 words)
          const int64_t o = s * stride + k0;
          uint32x4_t q[kP];
          kl_loop(a0 + o, a1 + o, a2 + o, a3 + o, b + (s * steps_seg + k0 / 2) * 2 * kC, 1, n, 0, q);
          for (int i = 0; i < kP; ++i) pc[i] = vaddq_u32(pc[i], q[i]);
        }
    }
    out.group(j, std::min(kC, cols - j), pc);
    if (MODE != kFloat && ((bit0 + j + kC) % 64 == 0 || j + kC >= cols)) out.put_words((bit0 + j) / 64);
  }
}

template <int MODE>
void tile_kl_relu(const TileArgs& t) {
  if (t.relu) return tile_kl<MODE, true>(t);
  return tile_kl<MODE, false>(t);
}

void tile_kl_any(const TileArgs& t) {
  if (t.out_f) return tile_kl_relu<kFloat>(t);
  if (t.ithr[0]) return tile_kl<kBitsI, false>(t);
  return tile_kl_relu<kBitsF>(t);
}

}  // namespace

BKernel bkernel_neon_bcast();  // bconv_neon.cc: the broadcast-layout row

// The broadcast row's tiles (fields of one word or 3-word segments, <= 32-bit fields, and a
// layer prepared under another row) plus the K-in-lanes tile where the layer has that layout.
BKernel bkernel_neon_klanes() {
  BKernel k = bkernel_neon_bcast();
  k.kl_mr = kP;
  k.kl_tile = tile_kl_any;
  return k;
}

}  // namespace detail
}  // namespace hbn

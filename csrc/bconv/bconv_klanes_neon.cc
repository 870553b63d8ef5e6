// NEON micro-kernel on the K-in-lanes weight layout (bconv_klanes.h): a tile is 6 output
// pixels x 4 output channels. Per step (two K words): one q load per pixel (its two words
// straight from the activation row, no replication), one four-register `ld1` of the four
// channels' two words; per pixel, eor + cnt per channel, the byte counts of channel pairs
// folded with one `addp`, and one `uadalp` per pair into 16-bit lanes: 12 vector ops per pixel
// per 512 binary MACs, the peak loop's 3 per 128, and 82 instructions per 3072 MACs (the
// 2 x 16 broadcast tile of bconv_neon.cc needs 61 per 2048, i.e. 91.5 per 3072). An
// accumulator holds two channels (four lanes each), so 6 x 4 fits: 12 accumulators, 6 + 4
// operand registers, two sets of four temporaries.
//
// The loop is software-pipelined: a pixel's next q register is loaded as soon as its four eors
// have issued, the weights after the last pixel's, and a pixel's addp + uadalp wait until the
// next pixel's eors and counts have issued (llvm-mca: 100% of the binary peak on N1, 80% on
// A55; in-order order matters there: the plain eor, cnt, addp, uadalp per pixel is 71%). Each
// step loads the next one's registers, across segment ends too; only the call's last step
// loads nothing, so nothing past the receptive field is read. An odd segment's last word is a
// `ldr d` step against weights whose second word is zero.
//
// After the K loop the 12 accumulators reduce to 6 quads (pixel: 4 channels) with 9 pairwise
// adds and 6 widenings; the output stage (OutStage below) works on those quads. One call covers
// every channel group of the tile's channels.
#include <arm_neon.h>

#include <algorithm>

#include "bconv/bconv_kernels.h"
#include "bconv/bconv_klanes.h"

namespace hbn {
namespace detail {
namespace {

constexpr int kP = kKlanesPixels;    // 6
constexpr int kC = kKlanesChannels;  // 4
static_assert(kP == 6 && kC == 4, "the K loop below is written for 6 x 4 tiles");
// Steps per K loop call: a reduced 16-bit lane sums 4 lanes of <= 32 per step: 511 * 128 <= 65535.
constexpr int kMaxSteps = 511;

// Registers: accumulators v0-v11 (pixel p: v2p channels 0-1, v2p+1 channels 2-3), pixel
// activations v12-v17, weights v18-v21, temporaries t0-t3 / t4-t7 (even / odd pixels).
#define HBN_E(t, p, c) "eor %[" t "].16b, v" p ".16b, v" c ".16b\n\t"
#define HBN_C(t) "cnt %[" t "].16b, %[" t "].16b\n\t"
#define HBN_EC(p, t0, t1, t2, t3, ld)                                                          \
  HBN_E(t0, p, "18") HBN_E(t1, p, "19") HBN_E(t2, p, "20") HBN_E(t3, p, "21") ld             \
  HBN_C(t0) HBN_C(t1) HBN_C(t2) HBN_C(t3)
// op: uadalp (accumulate) or uaddlp (the call's first step initialises the accumulators).
#define HBN_A(op, a0, a1, t0, t1, t2, t3)                                                       \
  "addp %[" t0 "].16b, %[" t0 "].16b, %[" t1 "].16b\n\t"                                      \
  "addp %[" t2 "].16b, %[" t2 "].16b, %[" t3 "].16b\n\t"                                      \
  op " v" a0 ".8h, %[" t0 "].16b\n\t" op " v" a1 ".8h, %[" t2 "].16b\n\t"
// Pixel p's eors and counts, then the previous pixel's addp + uadalp (see the header comment).
#define HBN_STEPX(op, l0, l1, l2, l3, l4, l5)                   \
  HBN_EC("12", "t0", "t1", "t2", "t3", l0)                      \
  HBN_EC("13", "t4", "t5", "t6", "t7", l1)                      \
  HBN_A(op, "0", "1", "t0", "t1", "t2", "t3")                   \
  HBN_EC("14", "t0", "t1", "t2", "t3", l2)                      \
  HBN_A(op, "2", "3", "t4", "t5", "t6", "t7")                   \
  HBN_EC("15", "t4", "t5", "t6", "t7", l3)                      \
  HBN_A(op, "4", "5", "t0", "t1", "t2", "t3")                   \
  HBN_EC("16", "t0", "t1", "t2", "t3", l4)                      \
  HBN_A(op, "6", "7", "t4", "t5", "t6", "t7")                   \
  HBN_EC("17", "t4", "t5", "t6", "t7", l5)                      \
  HBN_A(op, "8", "9", "t0", "t1", "t2", "t3")                   \
  HBN_A(op, "10", "11", "t4", "t5", "t6", "t7")
#define HBN_LDW "ld1 {v18.16b, v19.16b, v20.16b, v21.16b}, [%[b]], #64\n\t"
// A step that loads the next step's q (or, for an odd segment's last word, d) registers at off.
#define HBN_LD(r, v, p) "ldr " r v ", [%[a" p "], %[off]]\n\t"
#define HBN_STEP_L(op, r)                                                                       \
  HBN_STEPX(op, HBN_LD(r, "12", "0"), HBN_LD(r, "13", "1"), HBN_LD(r, "14", "2"), HBN_LD(r, "15", "3"), \
            HBN_LD(r, "16", "4"), HBN_LD(r, "17", "5") HBN_LDW)
#define HBN_STEP_N HBN_STEPX("uadalp", "", "", "", "", "", "")

// nseg segments of len (>= 2) words (pixel p's segment s at a[p] + s * sb bytes; weights
// streamed from b, (len + 1) / 2 steps of 64 bytes per segment): counts of pixel p, channels 0-3
// in r[p] (doubled with W = ushll, SH = ", #1"). The segment offset `so` moves on before a
// segment's last step, whose loads are the next segment's first.
#define HBN_KL_ASM(W, SH) \
  asm volatile( \
      "mov %[off], #0\n\t" \
      "mov %[so], #0\n\t" \
      "ldr q12, [%[a0]]\n\t" "ldr q13, [%[a1]]\n\t" "ldr q14, [%[a2]]\n\t" "ldr q15, [%[a3]]\n\t" \
      "ldr q16, [%[a4]]\n\t" "ldr q17, [%[a5]]\n\t" \
      HBN_LDW \
      "subs %[k], %[np], #1\n\t" \
      "b.eq 7f\n\t" \
      /* two or more full steps in the first segment: the first initialises the accumulators */ \
      "add %[off], %[off], #16\n\t" \
      HBN_STEP_L("uaddlp", "q") \
      "subs %[k], %[k], #1\n\t" \
      "b.ne 1f\n\t" \
      "b 4f\n\t" \
      "7:\n\t" \
      "movi v0.16b, #0\n\t" "movi v1.16b, #0\n\t" "movi v2.16b, #0\n\t" "movi v3.16b, #0\n\t" \
      "movi v4.16b, #0\n\t" "movi v5.16b, #0\n\t" "movi v6.16b, #0\n\t" "movi v7.16b, #0\n\t" \
      "movi v8.16b, #0\n\t" "movi v9.16b, #0\n\t" "movi v10.16b, #0\n\t" "movi v11.16b, #0\n\t" \
      "b 4f\n\t" \
      "2:\n\t"  /* segment start: its first registers are loaded */ \
      "subs %[k], %[np], #1\n\t" \
      "b.eq 4f\n\t" \
      "1:\n\t" \
      "add %[off], %[off], #16\n\t" \
      HBN_STEP_L("uadalp", "q") \
      "subs %[k], %[k], #1\n\t" \
      "b.ne 1b\n\t" \
      "4:\n\t"  /* the segment's last full step */ \
      "tbnz %[len], #0, 5f\n\t" \
      "add %[so], %[so], %[sb]\n\t" \
      "mov %[off], %[so]\n\t" \
      "subs %w[nseg], %w[nseg], #1\n\t" \
      "b.eq 8f\n\t" \
      HBN_STEP_L("uadalp", "q") \
      "b 2b\n\t" \
      "5:\n\t"  /* odd segment: the last full step loads the last word */ \
      "add %[off], %[off], #16\n\t" \
      HBN_STEP_L("uadalp", "d") \
      "add %[so], %[so], %[sb]\n\t" \
      "mov %[off], %[so]\n\t" \
      "subs %w[nseg], %w[nseg], #1\n\t" \
      "b.eq 8f\n\t" \
      HBN_STEP_L("uadalp", "q") \
      "b 2b\n\t" \
      "8:\n\t" \
      HBN_STEP_N \
      /* 12 accumulators -> pixels 0/1 (t6), 2/3 (t7), 4/5 (t8) x channels 0-3, 16-bit lanes */ \
      "addp %[t6].8h, v0.8h, v1.8h\n\t" "addp %[t7].8h, v2.8h, v3.8h\n\t" \
      "addp %[t8].8h, v4.8h, v5.8h\n\t" "addp %[t9].8h, v6.8h, v7.8h\n\t" \
      "addp %[t6].8h, %[t6].8h, %[t7].8h\n\t" "addp %[t7].8h, %[t8].8h, %[t9].8h\n\t" \
      "addp %[t8].8h, v8.8h, v9.8h\n\t" "addp %[t9].8h, v10.8h, v11.8h\n\t" \
      "addp %[t8].8h, %[t8].8h, %[t9].8h\n\t" \
      W " %[t0].4s, %[t6].4h" SH "\n\t" W "2 %[t1].4s, %[t6].8h" SH "\n\t" \
      W " %[t2].4s, %[t7].4h" SH "\n\t" W "2 %[t3].4s, %[t7].8h" SH "\n\t" \
      W " %[t4].4s, %[t8].4h" SH "\n\t" W "2 %[t5].4s, %[t8].8h" SH "\n\t" \
      : [b] "+r"(b), [nseg] "+r"(nseg), [off] "=&r"(off), [so] "=&r"(so), [k] "=&r"(k), [t0] "=&w"(r[0]), \
        [t1] "=&w"(r[1]), [t2] "=&w"(r[2]), [t3] "=&w"(r[3]), [t4] "=&w"(r[4]), [t5] "=&w"(r[5]), \
        [t6] "=&w"(t6), [t7] "=&w"(t7), [t8] "=&w"(t8), [t9] "=&w"(t9) \
      : [a0] "r"(a[0]), [a1] "r"(a[1]), [a2] "r"(a[2]), [a3] "r"(a[3]), [a4] "r"(a[4]), [a5] "r"(a[5]), \
        [np] "r"(np), [len] "r"(len), [sb] "r"(sb) \
      : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", \
        "v16", "v17", "v18", "v19", "v20", "v21", "memory", "cc");

// TWICE: the counts come out doubled (the float output stage's dot = base - 2 pc).
template <bool TWICE>
__attribute__((always_inline)) inline void kl_loop(const word_t* const (&a)[kP], const word_t* b, int nseg,
                                                   int64_t len, int64_t sb, uint32x4_t (&r)[kP]) {
  const int64_t np = len / 2;  // >= 1 full steps per segment
  int64_t off, so, k;
  uint32x4_t t6, t7, t8, t9;
  if (TWICE) {
    HBN_KL_ASM("ushll", ", #1");
  } else {
    HBN_KL_ASM("uxtl", "");
  }
}
#undef HBN_KL_ASM
#undef HBN_STEP_N
#undef HBN_STEP_L
#undef HBN_LD
#undef HBN_LDW
#undef HBN_STEPX
#undef HBN_A
#undef HBN_EC
#undef HBN_C
#undef HBN_E

enum Mode { kFloat, kBitsF, kBitsI };

// The tile's fields in locals (the output stores could alias TileArgs otherwise), and the output
// stage of one channel group: channels [j, j + 4), n of them real, from the quads pc[i] (pixel
// i; twice the popcounts except in integer-threshold mode). Float rows are stored; bit rows' 4 bits go into bits[i] at position (bit0 + j) % 64 and
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
  const float* res;  // fused residual add (TileArgs::res), null when none
  int64_t res_rs;
  bool res_relu;
  int rows, bit0;
  const TileArgs* t;
  word_t bits[kP] = {};

  explicit OutStage(const TileArgs& a)
      : scale(a.scale), bias(a.bias), thr(a.thr), pixel_scale(a.pixel_scale), flipmask(a.flipmask),
        out_f(a.out_f), out_b(a.out_b), out_rs(a.out_rs), res(a.res), res_rs(a.res_rs),
        res_relu(a.res_relu), rows(a.rows), bit0(a.bit0), t(&a) {
    for (int i = 0; i < kP; ++i) {
      base[i] = a.base[i];
      ithr[i] = a.ithr[i];
    }
  }

  // Pixel i's 4 bits at 4 i of a 24-bit value, from the pixels' compare masks.
  static inline uint32_t mask_bits(const uint32x4_t (&m)[kP]) {
    const uint32_t w[4] = {1, 2, 4, 8};
    const uint32x4_t l = vld1q_u32(w);
    uint32x4_t acc = vandq_u32(m[0], l);
    acc = vorrq_u32(acc, vandq_u32(m[1], vshlq_n_u32(l, 4)));
    acc = vorrq_u32(acc, vandq_u32(m[2], vshlq_n_u32(l, 8)));
    acc = vorrq_u32(acc, vandq_u32(m[3], vshlq_n_u32(l, 12)));
    acc = vorrq_u32(acc, vandq_u32(m[4], vshlq_n_u32(l, 16)));
    acc = vorrq_u32(acc, vandq_u32(m[5], vshlq_n_u32(l, 20)));
    return vaddvq_u32(acc);
  }

  inline void add_bits(int j, int n, uint32_t v16) {
    const int sh = (bit0 + j) % 64;
    const uint32_t keep = (1u << n) - 1u;
#pragma GCC unroll 6
    for (int i = 0; i < kP; ++i) bits[i] |= static_cast<word_t>((v16 >> (4 * i)) & keep) << sh;
  }

  inline void group(int j, int n, const uint32x4_t (&pc)[kP]) {
    uint32x4_t m[kP];
    if (MODE == kBitsI) {
#pragma GCC unroll 6
      for (int i = 0; i < kP; ++i) m[i] = vcgtq_s32(vreinterpretq_s32_u32(pc[i]), vld1q_s32(ithr[i] + j));
      add_bits(j, n, mask_bits(m));  // inverted channels: put_words
      return;
    }
    const float32x4_t scale4 = vld1q_f32(scale + j), bias4 = vld1q_f32(bias + j), zero = vdupq_n_f32(0.0f);
    auto value = [&](int i) {
      // base - 2 * pc (pc[i] holds 2 * pc here), exact in int32, then exactly apply_transform's
      // float operations.
      const int32x4_t dot = vsubq_s32(vld1q_s32(base[i] + j), vreinterpretq_s32_u32(pc[i]));
      float32x4_t y = vmulq_f32(vcvtq_f32_s32(dot), scale4);
      if (pixel_scale) y = vmulq_n_f32(y, pixel_scale[i < rows ? i : 0]);
      y = vaddq_f32(y, bias4);
      // ReLU as !(y > 0) -> +0: maxNum(y, +0) is +0 for -0 and for a (quiet) NaN.
      if (RELU) y = vmaxnmq_f32(y, zero);
      // The fused residual add, then its ReLU; only rows < rows and channels < n are read.
      if (res && i < rows) {
        const float* r = res + i * res_rs + j;
        float tmp[kC] = {};
        if (n < kC) {
          for (int l = 0; l < n; ++l) tmp[l] = r[l];
          r = tmp;
        }
        y = vaddq_f32(y, vld1q_f32(r));
        if (res_relu) y = vmaxnmq_f32(y, zero);
      }
      return y;
    };
    if (MODE == kFloat) {
      float* o = out_f + j;
      if (rows == kP && n == kC && !res) {
        // Stage by stage over the six pixels, so an in-order core is not stalled on one chain.
        float32x4_t y[kP];
#pragma GCC unroll 6
        for (int i = 0; i < kP; ++i)
          y[i] = vcvtq_f32_s32(vsubq_s32(vld1q_s32(base[i] + j), vreinterpretq_s32_u32(pc[i])));
#pragma GCC unroll 6
        for (int i = 0; i < kP; ++i) y[i] = vmulq_f32(y[i], scale4);
        if (pixel_scale) {
#pragma GCC unroll 6
          for (int i = 0; i < kP; ++i) y[i] = vmulq_n_f32(y[i], pixel_scale[i]);
        }
#pragma GCC unroll 6
        for (int i = 0; i < kP; ++i) y[i] = vaddq_f32(y[i], bias4);
        if (RELU) {
#pragma GCC unroll 6
          for (int i = 0; i < kP; ++i) y[i] = vmaxnmq_f32(y[i], zero);
        }
#pragma GCC unroll 6
        for (int i = 0; i < kP; ++i) vst1q_f32(o + i * out_rs, y[i]);
        return;
      }
      for (int i = 0; i < rows; ++i, o += out_rs) {
        float tmp[kC];
        vst1q_f32(tmp, value(i));
        for (int l = 0; l < n; ++l) o[l] = tmp[l];
      }
      return;
    }
    const float32x4_t thr4 = vld1q_f32(thr + j);
    const uint32x4_t flip = vreinterpretq_u32_s32(vld1q_s32(flipmask + j));
#pragma GCC unroll 6
    for (int i = 0; i < kP; ++i) {
      const float32x4_t y = value(i);
      m[i] = vbslq_u32(flip, vcgtq_f32(y, thr4), vcltq_f32(y, thr4));
    }
    add_bits(j, n, mask_bits(m));
  }

  // Bit rows: word w of the tile's output from bits[] (the integer-threshold compares of the
  // inverted channels flipped here, one xor per word: the inversion bits sit at the output bit
  // positions, inv_bit0 == bit0); the tile's first word is ORed into when the tile starts inside
  // it. `last` bits of word w are the tile's (1..64).
  inline void put_words(int w, int last) {
    const word_t hi = last == 64 ? ~word_t{0} : (word_t{1} << last) - 1;
    const word_t lo = w == 0 ? (word_t{1} << bit0) - 1 : 0;
    const word_t inv = MODE == kBitsI ? t->inv[w] & hi & ~lo : 0;
    for (int i = 0; i < rows; ++i) {
      word_t& o = out_b[i * out_rs + w];
      o = (w == 0 && bit0) ? (o | (bits[i] ^ inv)) : (bits[i] ^ inv);
    }
    for (int i = 0; i < kP; ++i) bits[i] = 0;
  }
};

template <int MODE, bool RELU>
void tile_kl(const TileArgs& t) {
  OutStage<MODE, RELU> out(t);
  const word_t* a[kP];
  for (int i = 0; i < kP; ++i) a[i] = t.a[i];
  const word_t* b = t.b;
  const int64_t len = t.seg_len, stride = t.seg_stride, sb = stride * static_cast<int64_t>(sizeof(word_t));
  const int nseg = t.nseg, cols = t.cols, bit0 = t.bit0;
  const int64_t steps_seg = (len + 1) / 2;
  const int64_t gw = kklanes_group_words(nseg, len);  // words per channel group
  const bool whole = nseg * steps_seg <= kMaxSteps;
  auto finish = [&](int j, const uint32x4_t (&pc)[kP]) {
    out.group(j, std::min(kC, cols - j), pc);
    if (MODE != kFloat && ((bit0 + j + kC) % 64 == 0 || j + kC >= cols)) {
      const int end = std::min(bit0 + j + kC, bit0 + cols);  // tile bits end here (exclusive)
      out.put_words((bit0 + j) / 64, end - (bit0 + j) / 64 * 64);
    }
  };
  if (whole) {
    for (int j = 0; j < cols; j += kC, b += gw) {
      uint32x4_t pc[kP];
      kl_loop<MODE != kBitsI>(a, b, nseg, len, sb, pc);
      finish(j, pc);
    }
    return;
  }
  // Long receptive fields: pieces of at most kMaxSteps steps within a segment (a piece boundary
  // falls on a step, so only a segment's last piece has its odd word).
  for (int j = 0; j < cols; j += kC, b += gw) {
    uint32x4_t pc[kP];
    for (int i = 0; i < kP; ++i) pc[i] = vdupq_n_u32(0);
    for (int s = 0; s < nseg; ++s)
      for (int64_t k0 = 0, n = 0; k0 < len; k0 += n) {
        n = std::min<int64_t>(len - k0, 2 * kMaxSteps);
        if (len - k0 - n == 1) n -= 2;  // no one-word piece (kl_loop takes >= 2 words)
        const int64_t o = s * stride + k0;
        const word_t* ap[kP];
        for (int i = 0; i < kP; ++i) ap[i] = a[i] + o;
        uint32x4_t q[kP];
        kl_loop<MODE != kBitsI>(ap, b + (s * steps_seg + k0 / 2) * 2 * kC, 1, n, 0, q);
        for (int i = 0; i < kP; ++i) pc[i] = vaddq_u32(pc[i], q[i]);
      }
    finish(j, pc);
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

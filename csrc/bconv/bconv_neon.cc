// NEON micro-kernels on the shared 32-channel block layout (the `neon_bcast` row, and the
// `neon` row's tiles for layers without the K-in-lanes layout: bconv_klanes_neon.cc).
//
// Main tile: 2 rows x 16 output channels, two channels per q register (8 per row), 16
// accumulators of 16-bit lanes. Per K word: each row's activation word replicated across a
// register, 128 bytes of weights, then per accumulator eor + cnt + uadalp (the byte popcounts
// pairwise-added straight into 16-bit lanes): 3 vector ops per 128 binary MACs, the peak
// loop's mix. A 16-bit lane gains at most 16 per K word, so only receptive fields over kChunk
// words are split into pieces whose counts are added; there is no periodic flush. Wider tiles
// do not fit the 32 registers (16 accumulators + weights + activations + temporaries). The K
// loop is inline assembly (see kloop for why and for its schedule).
//
// Like the AVX-512 kernel, one call covers every 32-channel weight block of a row panel
// (multi_block), so the per-tile setup is paid once per panel, and the output stage is
// vectorised: 4 channels per q register for the float transform (apply_transform's operation
// order, no FMA contraction) and for the float-rule and integer-threshold bit outputs, whose
// compare masks become 16 output bits with and + or + addv.
//
// 32-bit-lane tile (receptive fields of at most 32 bits, e.g. 1x1 convs on <= 32 channels):
// one eor + cnt + two pairwise widening adds give 4 channels' counts, no accumulation.
#include <arm_neon.h>

#include <algorithm>

#include "bconv/bconv_kernels.h"

namespace hbn {
namespace detail {
namespace {

constexpr int kMR = 2;      // rows of the main tile
constexpr int kNV = 8;      // q registers (2 channels each) per row: 16 channels
constexpr int kMR32 = 8;    // rows of the 32-bit-lane tile (no accumulators: amortises the call)
// K words per 16-bit accumulation run: 4095 * 16 <= 65535.
constexpr int64_t kChunk = 4095;

enum Mode { kFloat, kBitsF, kBitsI };

// The output stage of 16 channels [j, j + 16) of one row from 4 quads of int32 popcounts.
// Everything it reads sits in locals (the stores could alias TileArgs otherwise).
template <int MODE>
struct Out {
  const int32_t* base[kMR32];
  const int32_t* ithr[kMR32];
  const float *scale, *bias, *thr, *pixel_scale;
  const int32_t* flipmask;
  float* out_f;
  word_t* out_b;
  int64_t out_rs;
  int rows, cols, bit0;
  bool relu;
  const float* res;
  int64_t res_rs;
  bool res_relu;
  const TileArgs* t;

  Out(const TileArgs& a, int mr)
      : scale(a.scale), bias(a.bias), thr(a.thr), pixel_scale(a.pixel_scale), flipmask(a.flipmask),
        out_f(a.out_f), out_b(a.out_b), out_rs(a.out_rs), rows(a.rows), cols(a.cols), bit0(a.bit0),
        relu(a.relu), res(a.res), res_rs(a.res_rs), res_relu(a.res_relu), t(&a) {
    for (int i = 0; i < mr; ++i) {
      base[i] = a.base[i];
      ithr[i] = a.ithr[i];
    }
  }

  // Row i's 16-channel mask bits (lane l of quad q is bit 4q + l).
  static inline uint32_t mask_bits(const uint32x4_t m[4]) {
    const uint32_t w[4] = {1, 2, 4, 8};
    const uint32x4_t lanes = vld1q_u32(w);
    uint32x4_t acc = vandq_u32(m[0], lanes);
    acc = vorrq_u32(acc, vandq_u32(m[1], vshlq_n_u32(lanes, 4)));
    acc = vorrq_u32(acc, vandq_u32(m[2], vshlq_n_u32(lanes, 8)));
    acc = vorrq_u32(acc, vandq_u32(m[3], vshlq_n_u32(lanes, 12)));
    return vaddvq_u32(acc);
  }

  // Per-channel parameters of channels [j, j + 16), loaded once for all rows of a tile.
  struct Params {
    float32x4_t scale[4], bias[4], thr[4];
    uint32x4_t flip[4];
  };
  inline void load(int j, Params& p) const {
    if (MODE == kBitsI) return;
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      p.scale[q] = vld1q_f32(scale + j + 4 * q);
      p.bias[q] = vld1q_f32(bias + j + 4 * q);
      if (MODE == kBitsF) {
        p.thr[q] = vld1q_f32(thr + j + 4 * q);
        p.flip[q] = vreinterpretq_u32_s32(vld1q_s32(flipmask + j + 4 * q));
      }
    }
  }

  inline void store16(int i, int j, const uint32x4_t pc[4], const Params& p) const {
    const int n = std::min(16, cols - j);  // >= 1
    if (MODE == kBitsI) {
      uint32x4_t m[4];
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q)
        m[q] = vcgtq_s32(vreinterpretq_s32_u32(pc[q]), vld1q_s32(ithr[i] + j + 4 * q));
      put_bits(i, j, n, mask_bits(m) ^ (inv_bits32(*t, j) & 0xFFFFu));
      return;
    }
    // Stage by stage over the 4 quads, each branch taken once, so the stage is one block an
    // in-order core can overlap (a branch per quad split it into small serial blocks).
    float32x4_t y[4];
    const float32x4_t zero = vdupq_n_f32(0.0f);
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      // base - 2 * pc, exact in int32, then exactly apply_transform's float operations.
      const int32x4_t dot = vmlsq_n_s32(vld1q_s32(base[i] + j + 4 * q), vreinterpretq_s32_u32(pc[q]), 2);
      y[q] = vcvtq_f32_s32(dot);
    }
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) y[q] = vmulq_f32(y[q], p.scale[q]);
    if (pixel_scale) {
      const float ps = pixel_scale[i];
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) y[q] = vmulq_n_f32(y[q], ps);
    }
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) y[q] = vaddq_f32(y[q], p.bias[q]);
    // ReLU as !(y > 0) -> +0: maxNum(y, +0) is +0 for -0 and for a (quiet) NaN, and y, an
    // arithmetic result, is never a signalling NaN.
    if (relu) {
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) y[q] = vmaxnmq_f32(y[q], zero);
    }
    if (res) add_residual(i, j, n, y);
    if (MODE == kFloat) {
      float* o = out_f + i * out_rs + j;
      if (__builtin_expect(n == 16, 1)) {  // the partial path laid out of the row loops
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) vst1q_f32(o + 4 * q, y[q]);
      } else {
        float tmp[16];
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) vst1q_f32(tmp + 4 * q, y[q]);
        for (int l = 0; l < n; ++l) o[l] = tmp[l];
      }
      return;
    }
    uint32x4_t m[4];
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) m[q] = vbslq_u32(p.flip[q], vcgtq_f32(y[q], p.thr[q]), vcltq_f32(y[q], p.thr[q]));
    put_bits(i, j, n, mask_bits(m));
  }

  // Integer-threshold bits of rows 0 and 1 together: both rows' 16 compare masks weighted into
  // one register and summed by one addv (row 1 in the high half).
  inline void store16x2_ithr(int j, const uint32x4_t pc0[4], const uint32x4_t pc1[4]) const {
    const int n = std::min(16, cols - j);
    const uint32_t w[4] = {1, 2, 4, 8};
    const uint32x4_t l = vld1q_u32(w);
    uint32x4_t acc = vandq_u32(vcgtq_s32(vreinterpretq_s32_u32(pc0[0]), vld1q_s32(ithr[0] + j)), l);
    acc = vorrq_u32(acc, vandq_u32(vcgtq_s32(vreinterpretq_s32_u32(pc0[1]), vld1q_s32(ithr[0] + j + 4)),
                                   vshlq_n_u32(l, 4)));
    acc = vorrq_u32(acc, vandq_u32(vcgtq_s32(vreinterpretq_s32_u32(pc0[2]), vld1q_s32(ithr[0] + j + 8)),
                                   vshlq_n_u32(l, 8)));
    acc = vorrq_u32(acc, vandq_u32(vcgtq_s32(vreinterpretq_s32_u32(pc0[3]), vld1q_s32(ithr[0] + j + 12)),
                                   vshlq_n_u32(l, 12)));
    acc = vorrq_u32(acc, vandq_u32(vcgtq_s32(vreinterpretq_s32_u32(pc1[0]), vld1q_s32(ithr[1] + j)),
                                   vshlq_n_u32(l, 16)));
    acc = vorrq_u32(acc, vandq_u32(vcgtq_s32(vreinterpretq_s32_u32(pc1[1]), vld1q_s32(ithr[1] + j + 4)),
                                   vshlq_n_u32(l, 20)));
    acc = vorrq_u32(acc, vandq_u32(vcgtq_s32(vreinterpretq_s32_u32(pc1[2]), vld1q_s32(ithr[1] + j + 8)),
                                   vshlq_n_u32(l, 24)));
    acc = vorrq_u32(acc, vandq_u32(vcgtq_s32(vreinterpretq_s32_u32(pc1[3]), vld1q_s32(ithr[1] + j + 12)),
                                   vshlq_n_u32(l, 28)));
    const uint32_t v = vaddvq_u32(acc) ^ ((inv_bits32(*t, j) & 0xFFFFu) * 0x10001u);
    put_bits(0, j, n, v & 0xFFFFu);
    put_bits(1, j, n, v >> 16);
  }

  // The fused residual add of channels [j, j + n) of row i (n <= 16), then its ReLU.
  inline void add_residual(int i, int j, int n, float32x4_t y[4]) const {
    const float* r = res + i * res_rs + j;
    float tmp[16] = {};
    if (n < 16) {
      for (int l = 0; l < n; ++l) tmp[l] = r[l];
      r = tmp;
    }
    const float32x4_t zero = vdupq_n_f32(0.0f);
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      y[q] = vaddq_f32(y[q], vld1q_f32(r + 4 * q));
      if (res_relu) y[q] = vmaxnmq_f32(y[q], zero);
    }
  }

  // 16 output bits of channels [j, j + 16) of row i (n of them real).
  inline void put_bits(int i, int j, int n, uint32_t bits16) const {
    const int pos = bit0 + j;  // 16-bit groups never straddle a word
    const int sh = pos % 64;
    const word_t bits = static_cast<word_t>(bits16 & ((1u << n) - 1u)) << sh;
    word_t& w = out_b[i * out_rs + pos / 64];
    w = sh ? (w | bits) : bits;
  }
};

// The whole K loop of the main tile, hand-scheduled: nseg segments of len (>= 1) words of two
// rows (p0, p1; the next segment adv bytes after the previous one's end) against 16 channels'
// weights (b, step bytes per word), counts returned as 32-bit quads r0 (row 0), r1 (row 1).
// GCC's own code either spills accumulators (its pre-RA scheduler hoists all 16 eors) or,
// without that scheduler, chains every eor -> cnt -> uadalp through one temporary, which
// stalls an in-order core. Registers: accumulators v0-v7 (row 0) and v8-v15 (row 1), each
// two channels' 16-bit lanes; row activations replicated in v22/v23 (loaded through general
// registers: llvm's N1 model runs a dup from a general register outside the vector pipes);
// weights streamed two q registers at a time through v28/v29 and v30/v31 a group ahead of
// use; two sets of four temporaries (the output operands, free until the end) alternate
// between groups, so an eor never waits for the previous group's uadalp. Per word: 48 vector
// ops, 8 q loads, 2 dups; words go in pairs (one ldp per row, one loop branch per pair).
#define HBN_EOR(t, w, x) "eor %[" t "].16b, " w ".16b, " x ".16b\n\t"
#define HBN_CNT(t) "cnt %[" t "].16b, %[" t "].16b\n\t"
#define HBN_ADALP(a, t) "uadalp " a ".8h, %[" t "].16b\n\t"
// Group g: weight vectors 2g (w0) and 2g + 1 (w1) against both rows; ld0/ld1 load the next
// group's weights between the eors.
#define HBN_GROUP(w0, w1, t0, t1, t2, t3, a0, a1, a2, a3, ld0, ld1)                                   \
  HBN_EOR(t0, w0, "v22") HBN_EOR(t1, w0, "v23") ld0 HBN_EOR(t2, w1, "v22") HBN_EOR(t3, w1, "v23") ld1 \
  HBN_CNT(t0) HBN_CNT(t1) HBN_CNT(t2) HBN_CNT(t3)                                                      \
  HBN_ADALP(a0, t0) HBN_ADALP(a1, t1) HBN_ADALP(a2, t2) HBN_ADALP(a3, t3)
// Quad q of a row from accumulators u (channels 4q, 4q + 1) and v (4q + 2, 4q + 3).
#define HBN_QUAD(r, u, v, ta, tb) \
  "uaddlp " ta ".4s, " u ".8h\n\t" "uaddlp " tb ".4s, " v ".8h\n\t" "addp %[" r "].4s, " ta ".4s, " tb ".4s\n\t"

// One K word: weights at b (then b += step) against the row activations replicated in v22/v23.
#define HBN_WORD                                                                          \
  "ldr q28, [%[b]]\n\t" "ldr q29, [%[b], #16]\n\t"                                        \
  HBN_GROUP("v28", "v29", "s0", "s1", "s2", "s3", "v0", "v8", "v1", "v9",                 \
            "ldr q30, [%[b], #32]\n\t", "ldr q31, [%[b], #48]\n\t")                       \
  HBN_GROUP("v30", "v31", "s4", "s5", "s6", "s7", "v2", "v10", "v3", "v11",               \
            "ldr q28, [%[b], #64]\n\t", "ldr q29, [%[b], #80]\n\t")                       \
  HBN_GROUP("v28", "v29", "s0", "s1", "s2", "s3", "v4", "v12", "v5", "v13",               \
            "ldr q30, [%[b], #96]\n\t", "ldr q31, [%[b], #112]\n\t")                      \
  HBN_GROUP("v30", "v31", "s4", "s5", "s6", "s7", "v6", "v14", "v7", "v15",               \
            "add %[b], %[b], %[step]\n\t", "")

__attribute__((always_inline)) inline void kloop(const word_t* p0, const word_t* p1, const word_t* b, int nseg, int64_t len, int64_t adv,
                  int64_t step, uint32x4_t (&r0)[4], uint32x4_t (&r1)[4]) {
  uint64_t x0, x1, x2, x3;
  int64_t k;
  asm volatile(
      "movi v0.16b, #0\n\t" "movi v1.16b, #0\n\t" "movi v2.16b, #0\n\t" "movi v3.16b, #0\n\t"
      "movi v4.16b, #0\n\t" "movi v5.16b, #0\n\t" "movi v6.16b, #0\n\t" "movi v7.16b, #0\n\t"
      "movi v8.16b, #0\n\t" "movi v9.16b, #0\n\t" "movi v10.16b, #0\n\t" "movi v11.16b, #0\n\t"
      "movi v12.16b, #0\n\t" "movi v13.16b, #0\n\t" "movi v14.16b, #0\n\t" "movi v15.16b, #0\n\t"
      "2:\n\t"  // segment: an odd word first, then pairs of words (one ldp per row per pair)
      "tbz %[len], #0, 3f\n\t"
      "ldr %[x0], [%[p0]], #8\n\t"
      "ldr %[x1], [%[p1]], #8\n\t"
      "dup v22.2d, %[x0]\n\t"
      "dup v23.2d, %[x1]\n\t"
      HBN_WORD
      "3:\n\t"
      "lsr %[k], %[len], #1\n\t"
      "cbz %[k], 4f\n\t"
      "1:\n\t"
      "ldp %[x0], %[x2], [%[p0]], #16\n\t"
      "ldp %[x1], %[x3], [%[p1]], #16\n\t"
      "dup v22.2d, %[x0]\n\t"
      "dup v23.2d, %[x1]\n\t"
      HBN_WORD
      "dup v22.2d, %[x2]\n\t"
      "dup v23.2d, %[x3]\n\t"
      HBN_WORD
      "subs %[k], %[k], #1\n\t"
      "b.ne 1b\n\t"
      "4:\n\t"
      "add %[p0], %[p0], %[adv]\n\t"
      "add %[p1], %[p1], %[adv]\n\t"
      "subs %w[nseg], %w[nseg], #1\n\t"
      "b.ne 2b\n\t"
      HBN_QUAD("s0", "v0", "v1", "v22", "v23") HBN_QUAD("s1", "v2", "v3", "v28", "v29")
      HBN_QUAD("s2", "v4", "v5", "v30", "v31") HBN_QUAD("s3", "v6", "v7", "v22", "v23")
      HBN_QUAD("s4", "v8", "v9", "v28", "v29") HBN_QUAD("s5", "v10", "v11", "v30", "v31")
      HBN_QUAD("s6", "v12", "v13", "v22", "v23") HBN_QUAD("s7", "v14", "v15", "v28", "v29")
      : [p0] "+r"(p0), [p1] "+r"(p1), [b] "+r"(b), [nseg] "+r"(nseg), [k] "=&r"(k), [x0] "=&r"(x0),
        [x1] "=&r"(x1), [x2] "=&r"(x2), [x3] "=&r"(x3), [s0] "=&w"(r0[0]), [s1] "=&w"(r0[1]),
        [s2] "=&w"(r0[2]), [s3] "=&w"(r0[3]), [s4] "=&w"(r1[0]), [s5] "=&w"(r1[1]), [s6] "=&w"(r1[2]),
        [s7] "=&w"(r1[3])
      : [len] "r"(len), [adv] "r"(adv), [step] "r"(step)
      : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15",
        "v22", "v23", "v28", "v29", "v30", "v31", "memory", "cc");
}
#undef HBN_WORD
#undef HBN_QUAD
#undef HBN_GROUP
#undef HBN_ADALP
#undef HBN_CNT
#undef HBN_EOR

// CHUNKED: receptive fields over kChunk words; the K loop then runs on pieces of at most
// kChunk words (16-bit lanes cannot overflow) and the pieces' counts are added.
template <int MODE, bool CHUNKED>
void tile_main(const TileArgs& t) {
  const Out<MODE> out(t, kMR);
  const word_t* const a0 = t.a[0];
  const word_t* const a1 = t.a[1];
  const int64_t b_ks = t.b_ks, seg_len = t.seg_len, seg_stride = t.seg_stride, b_bs = t.b_bs;
  const int nseg = t.nseg, nblocks = t.nblocks, cols = t.cols, rows = t.rows;
  const int64_t step = b_ks * static_cast<int64_t>(sizeof(word_t));
  const int64_t adv = (seg_stride - seg_len) * static_cast<int64_t>(sizeof(word_t));
  for (int blk = 0; blk < nblocks; ++blk) {
    for (int h = 0; h < 2; ++h) {
      const int j = blk * kBlockN + 16 * h;
      if (j >= cols) break;
      const word_t* const b = t.b + blk * b_bs + 16 * h;
      uint32x4_t pc0[4], pc1[4];
      if (!CHUNKED) {
        kloop(a0, a1, b, nseg, seg_len, adv, step, pc0, pc1);
      } else {
        for (int q = 0; q < 4; ++q) pc0[q] = pc1[q] = vdupq_n_u32(0);
        for (int s = 0; s < nseg; ++s)
          for (int64_t k0 = 0; k0 < seg_len; k0 += kChunk) {
            const int64_t n = std::min(seg_len - k0, kChunk);
            uint32x4_t q0[4], q1[4];
            kloop(a0 + s * seg_stride + k0, a1 + s * seg_stride + k0, b + (s * seg_len + k0) * b_ks, 1, n, 0, step,
                  q0, q1);
            for (int q = 0; q < 4; ++q) {
              pc0[q] = vaddq_u32(pc0[q], q0[q]);
              pc1[q] = vaddq_u32(pc1[q], q1[q]);
            }
          }
      }
      if (MODE == kBitsI && rows > 1) {
        out.store16x2_ithr(j, pc0, pc1);
        continue;
      }
      typename Out<MODE>::Params prm;
      out.load(j, prm);
      out.store16(0, j, pc0, prm);
      if (rows > 1) out.store16(1, j, pc1, prm);
    }
  }
}

// 32-bit lanes: channel j's whole receptive field is b32[j], a row's is the low half of a[i][0].
template <int MODE>
void tile32(const TileArgs& t) {
  const Out<MODE> out(t, kMR32);
  const int rows = std::min(t.rows, kMR32), cols = t.cols;
  const uint32_t* const b32 = t.b32;
  for (int i = 0; i < rows; ++i) {
    const uint8x16_t x = vreinterpretq_u8_u32(vdupq_n_u32(static_cast<uint32_t>(t.a[i][0])));
    for (int j = 0; j < cols; j += 16) {
      typename Out<MODE>::Params prm;
      out.load(j, prm);
      uint32x4_t pc[4];
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q)
        pc[q] = vpaddlq_u16(vpaddlq_u8(vcntq_u8(veorq_u8(x, vreinterpretq_u8_u32(vld1q_u32(b32 + j + 4 * q))))));
      out.store16(i, j, pc, prm);
    }
  }
}

// One-word receptive fields (1x1 convs on 33-64 channels): no K loop, so nothing to
// accumulate: per 16 channels the weights (8 q registers, read from the block layout, kept for
// all rows) against each row's replicated word: eor + cnt, then three levels of byte-wise
// pairwise adds leave the 16 channels' counts in the 16 bytes of one register (each <= 64),
// widened to 4 quads. 30 vector ops per 16 channels instead of the main tile's K loop setup,
// 16-bit accumulators and reduction.
template <int MODE>
void tile1w(const TileArgs& t) {
  const Out<MODE> out(t, kMR32);
  const int rows = std::min(t.rows, kMR32), cols = t.cols;
  for (int j = 0; j < cols; j += 16) {
    const word_t* const b = t.b + (j / kBlockN) * t.b_bs + j % kBlockN;
    typename Out<MODE>::Params prm;
    out.load(j, prm);
    uint8x16_t w[8];
#pragma GCC unroll 8
    for (int v = 0; v < 8; ++v) w[v] = vreinterpretq_u8_u64(vld1q_u64(b + 2 * v));
    for (int i = 0; i < rows; ++i) {
      const uint8x16_t x = vreinterpretq_u8_u64(vdupq_n_u64(t.a[i][0]));
      uint8x16_t c[8];
#pragma GCC unroll 8
      for (int v = 0; v < 8; ++v) c[v] = vcntq_u8(veorq_u8(x, w[v]));
      const uint8x16_t s01 = vpaddq_u8(vpaddq_u8(c[0], c[1]), vpaddq_u8(c[2], c[3]));
      const uint8x16_t s23 = vpaddq_u8(vpaddq_u8(c[4], c[5]), vpaddq_u8(c[6], c[7]));
      const uint8x16_t s = vpaddq_u8(s01, s23);  // byte l: channel j + l
      const uint16x8_t lo = vmovl_u8(vget_low_u8(s)), hi = vmovl_high_u8(s);
      const uint32x4_t pc[4] = {vmovl_u16(vget_low_u16(lo)), vmovl_high_u16(lo), vmovl_u16(vget_low_u16(hi)),
                                vmovl_high_u16(hi)};
      out.store16(i, j, pc, prm);
    }
  }
}

void tile1w_any(const TileArgs& t) {
  if (t.out_f) return tile1w<kFloat>(t);
  if (t.ithr[0]) return tile1w<kBitsI>(t);
  return tile1w<kBitsF>(t);
}

template <bool CHUNKED>
void tile_mode(const TileArgs& t) {
  if (t.out_f) return tile_main<kFloat, CHUNKED>(t);
  if (t.ithr[0]) return tile_main<kBitsI, CHUNKED>(t);
  return tile_main<kBitsF, CHUNKED>(t);
}

void tile_any(const TileArgs& t) {
  if (t.kw > kChunk) return tile_mode<true>(t);
  return tile_mode<false>(t);
}

void tile32_any(const TileArgs& t) {
  if (t.out_f) return tile32<kFloat>(t);
  if (t.ithr[0]) return tile32<kBitsI>(t);
  return tile32<kBitsF>(t);
}

}  // namespace

BKernel bkernel_neon_bcast() {
  BKernel k{kMR, kBlockN, tile_any, true, 0, nullptr, kMR32, tile32_any};
  k.mr1w = kMR32;
  k.tile1w = tile1w_any;
  return k;
}

}  // namespace detail
}  // namespace hbn

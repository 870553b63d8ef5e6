// Internal contract between the BConv2d driver (bconv.cc) and the per-ISA micro-kernels.
//
// The driver treats the convolution as a binary GEMM without materialising im2col: row m of
// A (an output pixel) is its receptive field, K = KH*KW*words_for(C) words in (tap, word)
// order. In a zero-padded copy of the input (padded pixels are 0 words, i.e. +1 bits, fixed up
// by `base` below) the KW taps of one kernel row are neighbouring pixels, so a row of A is KH
// contiguous segments of KW*words words, seg_stride words apart. B holds the weights in
// blocks of kBlockN output channels, [block][k][kBlockN] words, k in the same order. A
// micro-kernel computes a rows x cols tile of popcounts, keeping the accumulators in registers
// across the whole K loop, and applies the output stage in the same pass:
//   dot = base[oc] - 2 * popcount(a XOR w)      (base = K minus the padded taps' weight sums)
//   y = ((dot * scale) * pixel_scale) + bias, ReLU      -- exactly apply_transform's order
//   y = y + residual, ReLU                              -- when a residual add is fused
// then stores floats, or threshold bits (threshold_bit) for the next binary layer.
#pragma once
#include <cstdint>

#include "hbn/kernel_table.h"
#include "hbn/types.h"

namespace hbn {
namespace detail {

// Output channels per packed weight block; every micro-kernel's tile width divides it, so
// one packing serves every ISA (the active path may change between runs).
constexpr int kBlockN = 32;
// Largest tile height of any micro-kernel (rows past the end repeat the last real row).
constexpr int kMaxMR = 12;

struct TileArgs {
  // Row i, word k (k = s * seg_len + j) is a[i][s * seg_stride + j]. All MR row pointers are
  // valid (rows past `rows` repeat a real row); kernels may skip rows >= `rows`.
  const word_t* a[kMaxMR];
  int64_t seg_len, seg_stride;
  int nseg;
  const word_t* b;         // tile oc j, word k at b[k * b_ks + j]
  int64_t b_ks;
  int64_t kw;              // words along K (= nseg * seg_len)
  int rows, cols;          // valid rows (<= MR) and output channels (<= NB) of this tile
  const int32_t* base[kMaxMR];  // per row: K minus padding correction, indexed by tile oc j
  const float* pixel_scale;     // per row i, or null; only rows < `rows` are read
  // Per tile oc j, readable for a whole NB block (padded past OC with neutral values):
  const float* scale;
  const float* bias;
  const float* thr;
  const int32_t* flipmask;  // -1 where out_flip, else 0
  bool relu;
  // Fused residual add (OutputTransform::residual): row i, oc j at res[i * res_rs + j] (only
  // rows < `rows`, channels < `cols` read), added after relu, then res_relu; null when none.
  const float* res;
  int64_t res_rs;
  bool res_relu;
  float* out_f;            // float mode: row i, oc j at out_f[i * out_rs + j]; null in bit mode
  word_t* out_b;           // bit mode: row i's word at out_b[i * out_rs], bits bit0.. bit0+cols-1
  int64_t out_rs;
  int bit0;                // 0: the tile starts its word (assign); else OR into it
  // Integer-threshold bit mode (bit mode with ithr[0] non-null): the transform and the
  // threshold compare of every channel fold into one integer compare on the popcount,
  //   bit j = (pc > ithr[i][j]) XOR inverted(j),
  // which the driver derives exactly from the float rule (it is monotone in the dot product).
  const int32_t* ithr[kMaxMR];  // per row, indexed by tile oc j (readable for a whole block)
  const word_t* inv;            // inverted(j) = inv[(inv_bit0 + j) / 64] >> ((inv_bit0 + j) % 64) & 1
  int inv_bit0;
  // Multi-block kernels (BKernel::multi_block) take a tile spanning `nblocks` weight blocks
  // of kBlockN channels (cols counts them all; channel fields are indexed by j across them),
  // the next block's weights b_bs words on; others always get nblocks = 1.
  int nblocks;
  int64_t b_bs;
  // 32-bit-lane tiles (BKernel::tile32): K is one word whose high half is zero; channel j's
  // 32 weight bits at b32[j] (blocks of 32 channels contiguous).
  const uint32_t* b32;
};

// The inversion bits of tile channels [j0, j0 + 32) (the driver pads inv with zero words).
inline uint32_t inv_bits32(const TileArgs& t, int j0) {
  const int p = t.inv_bit0 + j0;
  const word_t lo = t.inv[p / 64] >> (p % 64);
  const word_t hi = p % 64 > 32 ? t.inv[p / 64 + 1] << (64 - p % 64) : 0;
  return static_cast<uint32_t>(lo | hi);
}

struct BKernel {
  int mr;  // tile rows
  int nb;  // tile output channels (divides kBlockN and 64)
  void (*tile)(const TileArgs&);
  bool multi_block = false;  // tile() accepts nblocks > 1 (nb == kBlockN)
  // Optional tile for layers of at most 16 output channels: narrow_mr rows x 16 channels,
  // nblocks always 1.
  int narrow_mr = 0;
  void (*narrow)(const TileArgs&) = nullptr;
  // Optional tile for receptive fields of at most 32 bits (TileArgs::b32): mr32 rows, any
  // number of 32-channel blocks.
  int mr32 = 0;
  void (*tile32)(const TileArgs&) = nullptr;
  // Optional tile on the NEON K-in-lanes layout (bconv_klanes.h), used when the layer was
  // prepared with it: kl_mr rows, any number of channels; b is channel group 0 of the tile,
  // nseg / seg_len the layout's segments.
  int kl_mr = 0;
  void (*kl_tile)(const TileArgs&) = nullptr;
  // Optional tile for one-word receptive fields (kw == 1, e.g. 1x1 convs on 33-64 channels):
  // mr1w rows, any number of channels, the block layout.
  int mr1w = 0;
  void (*tile1w)(const TileArgs&) = nullptr;
  // Optional taller call for short fields with bit outputs (kw <= short_kw words, more than 16
  // outputs): mr_short rows (<= kMaxMR), any number of channels, the block layout. It pays the
  // per-call costs (the driver's row setup, the tile's entry) once for more rows. Not for float
  // outputs: there it gained nothing in the conv and made the max-pool reading the output
  // slower (SqueezeNet pool4 18.6 -> 23.7 us, Zen 5).
  int mr_short = 0;
  void (*tile_short)(const TileArgs&) = nullptr;
  int short_kw = 0;
  // Bit outputs take the integer-threshold epilogue (TileArgs::ithr) from this many output rows
  // on: its per-run derivation costs a fixed amount per channel, the float rule a row's worth
  // of epilogue per row, so the cut is where this row's float-rule epilogue has cost as much
  // (bconv.cc, int_thr; measured per row).
  int int_thr_rows = 160;
};

// The micro-kernel table (bconv_table.cc): one row per compiled kernel, best first.
const KernelTable<BKernel>& bconv_kernels();

// Population count for the portable path. Without a popcount instruction in the baseline ISA
// (x86-64 without -mpopcnt) the builtin becomes a libgcc call per word; the inline SWAR
// version lets independent accumulator chains overlap. The scalar peak loop uses it too.
inline int popcount64(word_t x) {
#if defined(__POPCNT__) || defined(__aarch64__) || !defined(__x86_64__)
  return __builtin_popcountll(x);
#else
  x = x - ((x >> 1) & 0x5555555555555555ULL);
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
  return static_cast<int>((x * 0x0101010101010101ULL) >> 56);
#endif
}

// Keeps the compiler from fusing a multiply and the following add into an FMA, which would
// round once instead of twice and disagree with apply_transform.
inline float no_contract(float v) {
#if defined(__aarch64__)
  asm("" : "+w"(v));
#elif defined(__x86_64__) || defined(__i386__)
  asm("" : "+x"(v));
#else
  volatile float t = v;
  v = t;
#endif
  return v;
}

// The output stage on a tile of popcounts pc[i * pc_rs + j], element by element: the
// definition the SIMD epilogues reproduce (used directly by the scalar and NEON kernels).
inline void tile_epilogue_ref(const TileArgs& t, const int32_t* pc, int pc_rs) {
  if (!t.out_f && t.ithr[0]) {
    for (int i = 0; i < t.rows; ++i) {
      word_t bits = 0;
      for (int j = 0; j < t.cols; ++j) {
        const bool bit = (pc[i * pc_rs + j] > t.ithr[i][j]) != static_cast<bool>((inv_bits32(t, j) & 1u));
        bits |= static_cast<word_t>(bit) << (t.bit0 + j);
      }
      word_t& w = t.out_b[i * t.out_rs];
      w = t.bit0 ? (w | bits) : bits;
    }
    return;
  }
  for (int i = 0; i < t.rows; ++i) {
    const int32_t* base = t.base[i];
    const float ps = t.pixel_scale ? t.pixel_scale[i] : 1.0f;
    word_t bits = 0;
    for (int j = 0; j < t.cols; ++j) {
      float y = static_cast<float>(base[j] - 2 * pc[i * pc_rs + j]);
      y = no_contract(y * t.scale[j]);
      if (t.pixel_scale) y = no_contract(y * ps);
      y = y + t.bias[j];
      if (t.relu && !(y > 0.0f)) y = 0.0f;
      if (t.res) {
        y = y + t.res[i * t.res_rs + j];
        if (t.res_relu && !(y > 0.0f)) y = 0.0f;
      }
      if (t.out_f) {
        t.out_f[i * t.out_rs + j] = y;
      } else {
        const bool bit = t.flipmask[j] ? (y > t.thr[j]) : (y < t.thr[j]);
        bits |= static_cast<word_t>(bit) << (t.bit0 + j);
      }
    }
    if (!t.out_f) {
      word_t& w = t.out_b[i * t.out_rs];
      w = t.bit0 ? (w | bits) : bits;
    }
  }
}

}  // namespace detail
}  // namespace hbn

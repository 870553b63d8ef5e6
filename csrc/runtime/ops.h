// The non-convolution ops of the graph executor, on NHWC float activations. Each is the plain
// definition PyTorch uses (same window rules, same divisors), parallelised over rows of the
// caller's pool; none allocates.
#pragma once
#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "hbn/threadpool.h"
#include "hbn/types.h"

namespace hbn {

// NCHW input with arbitrary element strides -> contiguous NHWC.
void nchw_to_nhwc(const float* in, int64_t n, int64_t c, int64_t h, int64_t w,
                  const int64_t strides[4], float* out, ThreadPool& pool);
// True when no element of a 4-D array with element strides is NaN or infinite (the model-input
// check: numpy's isfinite(x).all() built a bool array first, 10 us of a 120 us layer).
bool all_finite(const float* x, const int64_t shape[4], const int64_t strides[4]);
// Contiguous NHWC -> contiguous NCHW.
void nhwc_to_nchw(const float* in, int64_t n, int64_t c, int64_t h, int64_t w, float* out,
                  ThreadPool& pool);
// Flatten in PyTorch's (C, H, W) order, so a following Linear sees torch's feature order.
void flatten_chw(const float* in, int64_t n, int64_t c, int64_t h, int64_t w, float* out,
                 ThreadPool& pool);

void relu(const float* in, int64_t count, float* out, ThreadPool& pool);
void add(const float* a, const float* b, int64_t count, bool relu_after, float* out,
         ThreadPool& pool);
// y = x * scale[c] + shift[c] (optionally ReLU): an inference BatchNorm not folded elsewhere.
void channel_affine(const float* in, int64_t rows, int64_t c, const float* scale,
                    const float* shift, bool relu_after, float* out, ThreadPool& pool);
// Copies `c` channels of every row into columns [c_offset, c_offset + c) of a wider tensor.
void copy_channels(const float* in, int64_t rows, int64_t c, int64_t out_c, int64_t c_offset,
                   float* out, ThreadPool& pool);
// The packed-bit counterpart: `words` words of every row into words [w_offset, ...) of rows of
// out_words.
void copy_words(const word_t* in, int64_t rows, int64_t words, int64_t out_words,
                int64_t w_offset, word_t* out, ThreadPool& pool);
// Softmax over channels of every row (torch.softmax(x, dim=1)).
void softmax_rows(const float* in, int64_t rows, int64_t c, float* out, ThreadPool& pool);
// torch.nn.LocalResponseNorm: x / (k + alpha / size * sum_{window} x^2)^beta, window
// c - size/2 .. c + (size-1)/2 clipped to the channels.
void lrn(const float* in, int64_t rows, int64_t c, int size, double alpha, double beta, double k,
         float* out, ThreadPool& pool);

struct PoolParams {
  int kh, kw, sh, sw, ph, pw;
  int64_t out_h, out_w;
  bool count_include_pad;
  // Input rows [first, second) of output row oy, clipped to an image of h rows; cols likewise.
  std::pair<int64_t, int64_t> rows(int64_t oy, int64_t h) const {
    return {std::max<int64_t>(0, oy * sh - ph), std::min<int64_t>(h, oy * sh - ph + kh)};
  }
  std::pair<int64_t, int64_t> cols(int64_t ox, int64_t w) const {
    return {std::max<int64_t>(0, ox * sw - pw), std::min<int64_t>(w, ox * sw - pw + kw)};
  }
};
void max_pool(const float* in, int64_t n, int64_t h, int64_t w, int64_t c, const PoolParams& p,
              float* out, ThreadPool& pool);
void avg_pool(const float* in, int64_t n, int64_t h, int64_t w, int64_t c, const PoolParams& p,
              float* out, ThreadPool& pool);
// max_pool writing each pooled pixel's c channels at out + pixel * out_c: one operand of a
// concat pooled into its channel slice (out at the operand's channel offset, out_c the concat's
// width), so a max-pool of a concat needs no concatenated copy.
void max_pool_into(const float* in, int64_t n, int64_t h, int64_t w, int64_t c, const PoolParams& p,
                   float* out, int64_t out_c, ThreadPool& pool);
// A packed copy of a float activation for one binary consumer, written by the op that produces
// the floats while they are still in registers: bit(c) = flip[c] ? (y > thr[c]) : (y < thr[c]),
// the rule of pack_rows. Built once per consumer by make_pack_target; `out` (rows of
// words_for(c) words) is set per run.
struct PackSink {
  const float* thr = nullptr;     // [c] the consumer's thresholds
  const uint8_t* flip = nullptr;  // [c] or null
  // The same rule as one comparison, for SIMD paths: bit = (y ^ sign[c]) < thr_x[c], where
  // sign[c] is -0.0f (flip: negate) or +0.0f and thr_x[c] = flip ? -thr[c] : thr[c]; negation
  // is exact and keeps NaN unordered, so this is the flip rule bit for bit. Padded with zeros
  // to a multiple of 16 channels so vector loads never need a mask.
  const float* sign = nullptr;
  const float* thr_x = nullptr;
  word_t* out = nullptr;
};
// Owns the arrays a PackSink points to.
struct PackTarget {
  std::vector<float> thr, sign, thr_x;
  std::vector<uint8_t> flip;
  PackSink sink(word_t* out) const;
};
PackTarget make_pack_target(const float* thr, const uint8_t* flip, int64_t c);
// Most sinks one fused op writes per pass (more are handled in further passes).
constexpr int kMaxPackSinks = 4;

// max_pool, writing the pooled floats to `out` (may be null) and/or packed bits to each sink.
void max_pool_fused(const float* in, int64_t n, int64_t h, int64_t w, int64_t c,
                    const PoolParams& p, float* out, const PackSink* sinks, int n_sinks,
                    ThreadPool& pool);
// add over rows of c channels (optionally ReLU), floats to `out` (may be null) and/or bits to
// each sink: the residual add that also feeds the next block's binary convolutions.
void add_fused(const float* a, const float* b, int64_t rows, int64_t c, bool relu_after,
               float* out, const PackSink* sinks, int n_sinks, ThreadPool& pool);
// Packs only the pixels (y * sh, x * sw) of NHWC floats [n][h][w][c] (the only ones a 1x1
// unpadded conv of that stride reads) into [n][ceil(h/sh)][ceil(w/sw)][words_for(c)], by
// pack_rows' rule (thr may be null: plain sign).
void pack_pixels_strided(const float* in, int64_t n, int64_t h, int64_t w, int64_t c, int sh, int sw,
                         const float* thr, const uint8_t* flip, word_t* out, ThreadPool& pool);
// Output rows [r0, r1) of max_pool / max_pool_fused (floats to out if non-null, bits to each
// sink), in the calling thread, with the same row kernels: a fused producer pools the rows of
// its output as they finish (runtime/fuse_plan.h).
void max_pool_fused_range(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p,
                          float* out, const PackSink* sinks, int n_sinks, int64_t r0, int64_t r1);
// NCHW input (any strides) straight to packed NHWC bits for one binary consumer: the model
// input of a network whose first layer is binary never exists as NHWC floats.
void nchw_pack(const float* in, int64_t n, int64_t c, int64_t h, int64_t w,
               const int64_t strides[4], const PackSink& sink, ThreadPool& pool);

// Max-pool then threshold + pack for a binary consumer (bit(c) as in pack_rows): the pooled
// registers are compared directly (max_pool_fused with one sink), no float is stored.
void max_pool_pack(const float* in, int64_t n, int64_t h, int64_t w, int64_t c,
                   const PoolParams& p, const float* thr, const uint8_t* flip, word_t* out,
                   ThreadPool& pool);
// Max-pool in the bit domain, on rows of `words` packed sign bits that a producer thresholded
// for the consumer after the pool (bit = y < thr, or y > thr where or_mask has the bit set).
// Max commutes with a non-decreasing comparison: bit(max y) = AND of the window's bits where
// bit 1 means "below", OR where it means "above". Windows are clipped to the input, so padded
// positions are ignored as PyTorch's -inf padding is. Tail bits stay 0 (AND/OR of zeros).
void max_pool_bits(const word_t* in, int64_t n, int64_t h, int64_t w, int64_t words,
                   const PoolParams& p, const word_t* or_mask, word_t* out, ThreadPool& pool);
void adaptive_avg_pool(const float* in, int64_t n, int64_t h, int64_t w, int64_t c,
                       int64_t out_h, int64_t out_w, float* out, ThreadPool& pool);

// XNOR-Net input scale before pooling: A[row] = mean_c |x[row, c] * scale[c] + shift[c]|.
void mean_abs_affine(const float* in, int64_t rows, int64_t c, const float* scale,
                     const float* shift, float* out, ThreadPool& pool);

}  // namespace hbn

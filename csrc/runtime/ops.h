// The non-convolution ops of the graph executor, on NHWC float activations. Each is the plain
// definition PyTorch uses (same window rules, same divisors), parallelised over rows of the
// caller's pool; none allocates.
#pragma once
#include <cstdint>

#include "hbn/threadpool.h"
#include "hbn/types.h"

namespace hbn {

// NCHW input with arbitrary element strides -> contiguous NHWC.
void nchw_to_nhwc(const float* in, int64_t n, int64_t c, int64_t h, int64_t w,
                  const int64_t strides[4], float* out, ThreadPool& pool);
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
};
void max_pool(const float* in, int64_t n, int64_t h, int64_t w, int64_t c, const PoolParams& p,
              float* out, ThreadPool& pool);
void avg_pool(const float* in, int64_t n, int64_t h, int64_t w, int64_t c, const PoolParams& p,
              float* out, ThreadPool& pool);
// Max-pool then threshold + pack for a binary consumer (bit(c) as in pack_rows), a band of
// output rows at a time so the pooled floats (staged in `stage`, one float output's size) are
// packed while still in cache.
void max_pool_pack(const float* in, int64_t n, int64_t h, int64_t w, int64_t c,
                   const PoolParams& p, const float* thr, const uint8_t* flip, float* stage,
                   word_t* out, ThreadPool& pool);
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

// The non-convolution ops of the graph executor, on NHWC float activations. Each is the plain
// definition PyTorch uses (same window rules, same divisors), parallelised over rows of the
// caller's pool; none allocates.
#pragma once
#include <cstdint>

#include "hbn/threadpool.h"

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
void adaptive_avg_pool(const float* in, int64_t n, int64_t h, int64_t w, int64_t c,
                       int64_t out_h, int64_t out_w, float* out, ThreadPool& pool);

// XNOR-Net input scale before pooling: A[row] = mean_c |x[row, c] * scale[c] + shift[c]|.
void mean_abs_affine(const float* in, int64_t rows, int64_t c, const float* scale,
                     const float* shift, float* out, ThreadPool& pool);

}  // namespace hbn

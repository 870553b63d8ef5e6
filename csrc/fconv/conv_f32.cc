#include "fconv/conv_f32.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "fconv/gemm_driver.h"
#include "fconv/ukernel.h"

namespace hbn {

using sgemm_detail::kNR;

namespace sgemm_detail {

GemmArgs conv_gemm_args(const ConvGeometry& g, ConvAlgo algo, const float* in, int n, int in_h,
                        int in_w, const OutputTransform& t, float* out, void* workspace) {
  if (n < 0 || in_h < 1 || in_w < 1) throw std::invalid_argument("conv: bad input size");
  const int oh = g.out_h(in_h), ow = g.out_w(in_w);
  if (in_h + 2 * g.pad_h < g.kernel_h || in_w + 2 * g.pad_w < g.kernel_w || oh < 1 || ow < 1)
    throw std::invalid_argument("conv: input " + std::to_string(in_h) + "x" +
                                std::to_string(in_w) + " is smaller than the kernel");
  sgemm_detail::GemmArgs a;
  a.M = static_cast<int64_t>(n) * oh * ow;
  a.N = g.out_channels;
  a.K = static_cast<int64_t>(g.kernel_h) * g.kernel_w * g.in_channels;
  const bool pointwise = g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 &&
                         g.stride_w == 1 && g.pad_h == 0 && g.pad_w == 0;
  if (pointwise) {
    // The NHWC input already is the im2col matrix.
    a.A.a = in;
    a.A.lda = g.in_channels;
  } else {
    a.A.conv = &g;
    a.A.in = in;
    a.A.in_h = in_h;
    a.A.in_w = in_w;
    a.A.out_h = oh;
    a.A.out_w = ow;
    a.A.algo = algo;
  }
  a.t = &t;
  a.C = out;
  a.ldc = g.out_channels;
  a.workspace = workspace;
  return a;
}

}  // namespace sgemm_detail

Conv2dF32::Conv2dF32(const ConvGeometry& g, const float* weight_oihw,
                     const std::function<void(const void*, size_t)>& consumed) : g_(g) {
  if (!g.valid())
    throw std::invalid_argument("conv geometry: channels, kernel and stride must be >= 1, padding >= 0");
  const int IC = g.in_channels, KH = g.kernel_h, KW = g.kernel_w;
  const int64_t K = static_cast<int64_t>(KH) * KW * IC, N = g.out_channels;
  const int64_t panels = (N + kNR - 1) / kNR;
  packed_.resize(static_cast<size_t>(panels * K * kNR));
  // B[k][oc] with k = (kh*KW + kw)*IC + ic, the im2col column order. Panels are independent
  // and each reads only its kNR output channels' rows of OIHW, so packing goes in chunks of
  // panels and reports each finished prefix of the weights.
  constexpr int64_t kChunk = 8;
  for (int64_t p0 = 0; p0 < panels; p0 += kChunk) {
    const int64_t n0 = p0 * kNR, n1 = std::min(N, (p0 + kChunk) * kNR);
    sgemm_detail::pack_b_panels(
        K, n1 - n0,
        [&](int64_t k, int64_t j) {
          const int64_t ic = k % IC, tap = k / IC, oc = n0 + j;
          return weight_oihw[((oc * IC + ic) * KH + tap / KW) * KW + tap % KW];
        },
        packed_.data() + p0 * K * kNR);
    if (consumed) consumed(weight_oihw, static_cast<size_t>(n1 * K) * sizeof(float));
  }
  b_ = packed_.data();
}

size_t Conv2dF32::packed_bytes(const ConvGeometry& g) {
  const int64_t K = static_cast<int64_t>(g.kernel_h) * g.kernel_w * g.in_channels;
  return static_cast<size_t>((g.out_channels + kNR - 1) / kNR * K * kNR) * sizeof(float);
}

Conv2dF32 Conv2dF32::view(const ConvGeometry& g, const float* packed) {
  if (!g.valid())
    throw std::invalid_argument("conv geometry: channels, kernel and stride must be >= 1, padding >= 0");
  Conv2dF32 c(g);
  c.b_ = packed;
  return c;
}

size_t Conv2dF32::workspace_bytes(int, int in_h, int in_w) const {
  return sgemm_detail::conv_workspace_bytes(g_, algo_, in_h, in_w);
}

void Conv2dF32::run(const float* in, int n, int in_h, int in_w, const OutputTransform& t,
                    float* out, void* workspace, ThreadPool& pool,
                    const std::function<void(int64_t, int64_t)>* rows_done) const {
  sgemm_detail::GemmArgs a = sgemm_detail::conv_gemm_args(g_, algo_, in, n, in_h, in_w, t, out, workspace);
  a.b_packed = b_;
  a.rows_done = rows_done;
  sgemm_detail::gemm_run(a, pool);
}

namespace {

// out[n][oh][ow][oc] = sum over (kh, kw, ic) of in[n][ih][iw][ic] * w(oc, ic, kh, kw), in double,
// where ih = oh*stride - pad + kh and taps outside the image contribute 0 (zero padding).
template <typename W>
void conv_reference(const ConvGeometry& g, const float* in, int n, int in_h, int in_w, W w,
                    float* out) {
  const int oh_n = g.out_h(in_h), ow_n = g.out_w(in_w);
  const int IC = g.in_channels, OC = g.out_channels;
  for (int b = 0; b < n; ++b)
    for (int oh = 0; oh < oh_n; ++oh)
      for (int ow = 0; ow < ow_n; ++ow)
        for (int oc = 0; oc < OC; ++oc) {
          double acc = 0.0;
          for (int kh = 0; kh < g.kernel_h; ++kh) {
            const int ih = oh * g.stride_h - g.pad_h + kh;
            if (ih < 0 || ih >= in_h) continue;
            for (int kw = 0; kw < g.kernel_w; ++kw) {
              const int iw = ow * g.stride_w - g.pad_w + kw;
              if (iw < 0 || iw >= in_w) continue;
              const float* x = in + ((static_cast<int64_t>(b) * in_h + ih) * in_w + iw) * IC;
              for (int ic = 0; ic < IC; ++ic) acc += static_cast<double>(x[ic]) * w(oc, ic, kh, kw);
            }
          }
          out[((static_cast<int64_t>(b) * oh_n + oh) * ow_n + ow) * OC + oc] = static_cast<float>(acc);
        }
}

}  // namespace

void conv2d_f32_reference(const ConvGeometry& g, const float* in, int n, int in_h, int in_w,
                          const float* weight_oihw, float* out) {
  const int IC = g.in_channels, KH = g.kernel_h, KW = g.kernel_w;
  conv_reference(g, in, n, in_h, in_w,
                 [&](int oc, int ic, int kh, int kw) {
                   return static_cast<double>(
                       weight_oihw[((static_cast<int64_t>(oc) * IC + ic) * KH + kh) * KW + kw]);
                 },
                 out);
}

}  // namespace hbn

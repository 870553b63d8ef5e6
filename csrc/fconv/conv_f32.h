// The float conv (FPrec layers, the first layer, float linear layers): float weights repacked
// once for the SGEMM micro-kernels (fconv/). Linear layers are the 1x1 case on a 1x1 map
// (rows = batch). Activations are NHWC float.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "fconv/aligned.h"
#include "fconv/conv_algo.h"
#include "hbn/conv_geometry.h"
#include "hbn/threadpool.h"
#include "hbn/types.h"
#include "transform/output_transform.h"

namespace hbn {

class Conv2dF32 {
 public:
  // weight_oihw: PyTorch layout [OC][IC][KH][KW]; repacked once for the SGEMM micro-kernel.
  // consumed (optional) is called with growing prefixes of weight_oihw as the packing stops
  // reading them (so a loader can release mapped pages while a large layer is still packing).
  Conv2dF32(const ConvGeometry& g, const float* weight_oihw,
            const std::function<void(const void* begin, size_t bytes)>& consumed = nullptr);
  // Runs on weights the caller already holds packed as the constructor packs them (the
  // f32_panel32 layout: [ceil(OC/32)][K][32] floats, K = (kh*KW + kw)*IC + ic, columns past OC
  // 0), in place: `packed` is not copied and must outlive the object.
  static Conv2dF32 view(const ConvGeometry& g, const float* packed);
  static size_t packed_bytes(const ConvGeometry& g);  // of that layout
  Conv2dF32(Conv2dF32&&) = default;
  Conv2dF32& operator=(Conv2dF32&&) = default;
  Conv2dF32(const Conv2dF32&) = delete;  // b_ would point into the source
  Conv2dF32& operator=(const Conv2dF32&) = delete;
  const ConvGeometry& geometry() const { return g_; }
  size_t workspace_bytes(int n, int in_h, int in_w) const;
  // in: NHWC [n][in_h][in_w][IC]; out: NHWC [n][OH][OW][OC]; zero padding.
  // rows_done (optional): GemmArgs::rows_done, output rows (pixels) reported as they are final.
  void run(const float* in, int n, int in_h, int in_w, const OutputTransform& t, float* out,
           void* workspace, ThreadPool& pool,
           const std::function<void(int64_t, int64_t)>* rows_done = nullptr) const;
  // Changes workspace_bytes(): size the workspace after choosing.
  void set_algo(ConvAlgo a) { algo_ = a; }
  ConvAlgo algo() const { return algo_; }

 private:
  ConvGeometry g_;
  explicit Conv2dF32(const ConvGeometry& g) : g_(g) {}
  AlignedVector<float> packed_;  // the panels when packed here; empty for a view
  const float* b_ = nullptr;     // the panels: packed_ or the caller's
  ConvAlgo algo_ = ConvAlgo::automatic;
};

// Conv2dF32 and WBConv2d (wbconv/wbconv.h): the output spatial size must be >= 1 (else
// std::invalid_argument); the transform must write floats (out_threshold null).
// workspace_bytes() is bounded for im2col (MC x KC blocks); the direct path adds one
// zero-padded image when the conv pads.

// Scalar reference (double accumulation), out NHWC [n][OH][OW][OC], no transform.
void conv2d_f32_reference(const ConvGeometry& g, const float* in, int n, int in_h, int in_w,
                          const float* weight_oihw, float* out);

namespace sgemm_detail {
struct GemmArgs;
// The GemmArgs of a float-input conv, everything but the B operand (conv_f32.cc): the input,
// im2col or in place (pointwise convs read the NHWC input as the matrix), C, the workspace.
GemmArgs conv_gemm_args(const ConvGeometry& g, ConvAlgo algo, const float* in, int n, int in_h,
                        int in_w, const OutputTransform& t, float* out, void* workspace);
}  // namespace sgemm_detail

}  // namespace hbn

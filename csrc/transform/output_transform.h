// The fused output transform every conv/GEMM kernel applies to its accumulator tile, in one
// pass, before anything is written:
//   y = acc * scale[oc] * pixel_scale[m] + bias[oc];  y = act(y)
// where acc is the raw dot product (an integer for binary kernels, a float sum for float
// kernels), oc the output channel and m the output row (pixel index n*OH*OW + oh*OW + ow).
// scale folds alpha (mean|W|) and any BatchNorm after the conv; bias folds conv bias and BN
// shift; pixel_scale is XNOR-Net's spatial input scale K (null when unused).
//
// Binary-output mode (out_threshold != null): instead of floats the kernel writes packed bits
// for the next binary layer: bit(oc) = out_flip[oc] ? (y > thr[oc]) : (y < thr[oc]), using the
// sign convention of hbn/types.h. This is exact because it is the same comparison the next
// layer's bit-packing (a folded BatchNorm before sign) would make on the float it skips.
//
// Residual (residual != null): a following elementwise add fused into the store (the executor's
// fuse pass, runtime/fuse_plan.h): after act, y = y + residual[m * residual_ld + oc], then
// residual_act - exactly the add op's float operations on the conv's output, in its order. The
// bit mode compares this sum.
#pragma once
#include <cstdint>

namespace hbn {

enum class Activation : int { none = 0, relu = 1 };

struct OutputTransform {
  const float* scale = nullptr;        // [OC] or null (= 1)
  const float* bias = nullptr;         // [OC] or null (= 0)
  const float* pixel_scale = nullptr;  // [M] or null (= 1)
  Activation act = Activation::none;
  const float* out_threshold = nullptr;  // [OC]: write bits instead of floats
  const uint8_t* out_flip = nullptr;     // [OC] or null (= all 0)
  const float* residual = nullptr;       // [M][residual_ld] or null
  int64_t residual_ld = 0;
  Activation residual_act = Activation::none;
};

// The scalar definition of one element of the transform; SIMD tiles must agree with it.
inline float apply_transform(const OutputTransform& t, float acc, int64_t m, int64_t oc) {
  float y = acc;
  if (t.scale) y *= t.scale[oc];
  if (t.pixel_scale) y *= t.pixel_scale[m];
  if (t.bias) y += t.bias[oc];
  if (t.act == Activation::relu && !(y > 0.0f)) y = 0.0f;
  if (t.residual) {
    y = y + t.residual[m * t.residual_ld + oc];
    if (t.residual_act == Activation::relu && !(y > 0.0f)) y = 0.0f;
  }
  return y;
}

// Bit for the binary-output mode (1 encodes -1).
inline bool threshold_bit(const OutputTransform& t, float y, int64_t oc) {
  const float thr = t.out_threshold[oc];
  return (t.out_flip && t.out_flip[oc]) ? (y > thr) : (y < thr);
}

}  // namespace hbn

// A float-input conv test case (Conv2dF32, WBConv2d) and the tolerance both tests judge by.
#pragma once
#include <cstdint>

#include "hbn/conv_geometry.h"

namespace hbn_test {

struct ConvCase {
  int n, h, w, ic, oc, kh, kw, sh, sw, ph, pw;
  hbn::ConvGeometry geometry() const {
    hbn::ConvGeometry g;
    g.in_channels = ic; g.out_channels = oc; g.kernel_h = kh; g.kernel_w = kw;
    g.stride_h = sh; g.stride_w = sw; g.pad_h = ph; g.pad_w = pw;
    return g;
  }
};

// Float accumulation of K products of magnitude <= 1 (times the transform's gain).
inline float tolerance(int64_t K, float gain) { return (1e-6f * static_cast<float>(K) + 1e-5f) * gain; }

}  // namespace hbn_test

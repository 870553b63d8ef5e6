// The geometry of a 2-D convolution, shared by every conv family (bconv/, fconv/, wbconv/),
// the runtime graph and the bindings.
#pragma once

namespace hbn {

struct ConvGeometry {
  int in_channels = 0, out_channels = 0;
  int kernel_h = 1, kernel_w = 1;
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;
  int out_h(int in_h) const { return (in_h + 2 * pad_h - kernel_h) / stride_h + 1; }
  int out_w(int in_w) const { return (in_w + 2 * pad_w - kernel_w) / stride_w + 1; }
  // Channels, kernel and stride >= 1, padding >= 0 (what every conv constructor requires).
  bool valid() const {
    return in_channels >= 1 && out_channels >= 1 && kernel_h >= 1 && kernel_w >= 1 && stride_h >= 1 &&
           stride_w >= 1 && pad_h >= 0 && pad_w >= 0;
  }
};

}  // namespace hbn

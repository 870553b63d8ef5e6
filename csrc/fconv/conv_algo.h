// How a float-input conv (Conv2dF32, WBConv2d) feeds its input to the GEMM (fconv/gemm_driver.h).
#pragma once

namespace hbn {

// `automatic` is the measured choice (prefer_direct: direct where a kernel row fits a K
// block); the others exist so tests and benchmarks can compare them.
enum class ConvAlgo : int {
  automatic = 0,
  im2col = 1,  // materialise MC x KC blocks of the im2col matrix, reuse each for all panels
  direct = 2,  // read the NHWC input in place, one run per kernel row (see ARuns); a zero-
               // padded copy of the image is made first when the conv pads
};

}  // namespace hbn

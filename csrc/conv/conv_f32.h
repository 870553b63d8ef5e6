// Float-input convolutions: FPrec (float weights) and WeightBinConv (bit-packed +-1 weights
// with a per-output-channel scale folded into the transform). Linear layers are the 1x1 case on
// a 1x1 map (rows = batch). Activations are NHWC float.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "bconv/bconv.h"  // ConvGeometry
#include "hbn/threadpool.h"
#include "hbn/types.h"
#include "sgemm/aligned.h"
#include "transform/output_transform.h"

namespace hbn {

// How a (non-pointwise) conv feeds its input to the GEMM (see sgemm/gemm_driver.h): im2col
// blocks, or the input read in place. `automatic` is the measured choice (direct for few input
// channels); the others exist so tests and benchmarks can compare them.
enum class ConvAlgo : int { automatic = 0, im2col = 1, direct = 2 };

class Conv2dF32 {
 public:
  // weight_oihw: PyTorch layout [OC][IC][KH][KW]; repacked once for the SGEMM micro-kernel.
  Conv2dF32(const ConvGeometry& g, const float* weight_oihw);
  const ConvGeometry& geometry() const { return g_; }
  size_t workspace_bytes(int n, int in_h, int in_w) const;
  // in: NHWC [n][in_h][in_w][IC]; out: NHWC [n][OH][OW][OC]; zero padding.
  void run(const float* in, int n, int in_h, int in_w, const OutputTransform& t, float* out,
           void* workspace, ThreadPool& pool) const;
  // Changes workspace_bytes(): size the workspace after choosing.
  void set_algo(ConvAlgo a) { algo_ = a; }
  ConvAlgo algo() const { return algo_; }

 private:
  ConvGeometry g_;
  AlignedVector<float> packed_;
  ConvAlgo algo_ = ConvAlgo::automatic;
};

// How WBConv2d feeds its bits to the micro-kernel (see wbgemm/wbgemm.h). `automatic` is the
// measured per-ISA choice (gemm_driver.cc, choose_bits_strategy); the others exist so tests and benchmarks can compare them.
enum class WBStrategy : int { automatic = 0, unpack = 1, direct = 2, lut = 3 };

class WBConv2d {
 public:
  // weight_bits: canonical layout [OC][KH][KW][words_for(IC)] (hbn/types.h convention); the
  // weights stay 1 bit each in memory. alpha and BN belong in the OutputTransform's scale.
  WBConv2d(const ConvGeometry& g, const word_t* weight_bits);
  static WBConv2d from_float(const ConvGeometry& g, const float* weight_oihw);
  const ConvGeometry& geometry() const { return g_; }
  size_t workspace_bytes(int n, int in_h, int in_w) const;
  // acc = sum over taps and channels of x * (+-1); then the transform. Zero padding.
  void run(const float* in, int n, int in_h, int in_w, const OutputTransform& t, float* out,
           void* workspace, ThreadPool& pool) const;
  void set_strategy(WBStrategy s) { strategy_ = s; }
  WBStrategy strategy() const { return strategy_; }
  void set_algo(ConvAlgo a) { algo_ = a; }  // as Conv2dF32::set_algo
  ConvAlgo algo() const { return algo_; }

 private:
  ConvGeometry g_;
  std::vector<uint32_t> packed_;  // bit panels [ceil(OC/32)][KH*KW*IC], 1 bit per weight
  // The same signs as LUT panels, one layout per compiled path with a LUT kernel (AVX-512,
  // AVX2) that this CPU supports; run() passes the active path's.
  std::vector<uint32_t> lut512_, lut256_;
  WBStrategy strategy_ = WBStrategy::automatic;
  ConvAlgo algo_ = ConvAlgo::automatic;
};

// Both classes: the output spatial size must be >= 1 (else std::invalid_argument); the
// transform must write floats (out_threshold null). workspace_bytes() is bounded for im2col
// (MC x KC blocks); the direct path adds one zero-padded image when the conv pads.

// Scalar references (double accumulation), out NHWC [n][OH][OW][OC], no transform.
void conv2d_f32_reference(const ConvGeometry& g, const float* in, int n, int in_h, int in_w,
                          const float* weight_oihw, float* out);
void wbconv2d_reference(const ConvGeometry& g, const float* in, int n, int in_h, int in_w,
                        const word_t* weight_bits, float* out);

}  // namespace hbn

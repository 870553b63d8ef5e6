// WeightBinConv (and WeightBin Linear): float activations times +-1 weights that stay 1 bit
// each in memory, with a per-output-channel scale (alpha, BN) folded into the transform. The
// class (here), the weight packing (wb_pack.h), the table-lookup kernels and their driver
// (lut.h) and the strategy choice (wb_strategy.h) make up this family; the FMA micro-kernels
// and the blocked/direct drivers are shared with the float conv (fconv/).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "fconv/conv_algo.h"
#include "hbn/conv_geometry.h"
#include "hbn/threadpool.h"
#include "hbn/types.h"
#include "transform/output_transform.h"
#include "wbconv/wb_strategy.h"

namespace hbn {

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
  // Bytes of LUT panels packed so far, over every table row (for tests and the memory figures;
  // not to be called while a run may be packing a row for the first time).
  size_t lut_panel_bytes() const;

 private:
  // The LUT panels for table row `row`, packed on first use (thread-safe, once per row).
  const uint32_t* lut_panels(int row) const;

  ConvGeometry g_;
  std::vector<uint32_t> packed_;  // bit panels [ceil(OC/32)][KH*KW*IC], 1 bit per weight
  // The same signs as LUT panels, one slot per row of the LUT table (wbconv/lut.h). Only the
  // row dispatch selects at construction is packed then; another row (set_isa, HBN_FORCE_ISA)
  // is packed when a run first needs it, so a model keeps one LUT layout, not one per ISA.
  struct LutSlots {
    explicit LutSlots(int rows) : once(new std::once_flag[static_cast<size_t>(rows)]), panels(static_cast<size_t>(rows)) {}
    std::unique_ptr<std::once_flag[]> once;
    std::vector<std::vector<uint32_t>> panels;
  };
  std::unique_ptr<LutSlots> lut_;  // a pointer so that the class stays movable
  WBStrategy strategy_ = WBStrategy::automatic;
  ConvAlgo algo_ = ConvAlgo::automatic;
};

// Scalar reference (double accumulation), out NHWC [n][OH][OW][OC], no transform.
void wbconv2d_reference(const ConvGeometry& g, const float* in, int n, int in_h, int in_w,
                        const word_t* weight_bits, float* out);

}  // namespace hbn

// WeightBinConv (and WeightBin Linear): float activations times +-1 weights that stay 1 bit
// each in memory, with a per-output-channel scale (alpha, BN) folded into the transform. The
// class (here), the weight packing (wb_pack.h), the table-lookup kernels and their driver
// (lut.h) and the strategy choice (wb_strategy.h) make up this family; the FMA micro-kernels
// and the blocked/direct drivers are shared with the float conv (fconv/).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "fconv/conv_algo.h"
#include "hbn/conv_geometry.h"
#include "hbn/threadpool.h"
#include "hbn/types.h"
#include "transform/output_transform.h"
#include "wbconv/lut.h"
#include "wbconv/wb_strategy.h"

namespace hbn {

class WBConv2d {
 public:
  // weight_bits: canonical layout [OC][KH][KW][words_for(IC)] (hbn/types.h convention); the
  // weights stay 1 bit each in memory. alpha and BN belong in the OutputTransform's scale.
  // consumed (optional) is called with growing prefixes of weight_bits as the packing stops
  // reading them (a loader releases mapped pages with it); weight_bits is not kept.
  WBConv2d(const ConvGeometry& g, const word_t* weight_bits,
           const std::function<void(const void* begin, size_t bytes)>& consumed = nullptr);
  WBConv2d(WBConv2d&&) = default;
  WBConv2d& operator=(WBConv2d&&) = default;
  // Runs on signs the caller already holds packed (a mapped model file's kernel layout): bit
  // panels ([ceil(OC/32)][K], lut == null) or the LUT panels of `*lut`. Used in place, not
  // copied, when they are the form the selected kernel path keeps (see Packed); otherwise that
  // form is packed from them and consumed(packed, bytes) is called once it is. `packed`
  // (aligned for uint32) must outlive the object either way (a later change of kernel path
  // may repack from it).
  static WBConv2d view(const ConvGeometry& g, const uint32_t* packed, const sgemm_detail::LutLayout* lut,
                       const std::function<void(const void* begin, size_t bytes)>& consumed = nullptr);
  static WBConv2d from_float(const ConvGeometry& g, const float* weight_oihw);
  // The hbn/weight_layout.h id of the packed form view() uses in place on the selected kernel
  // path: wbin_lut128g4 where that path keeps LUT panels in that layout (AVX-512), else
  // wbin_bits32 (every path that keeps bit panels; a LUT row of another layout repacks from
  // either). What export(wbin_layout="auto") writes.
  static uint32_t native_layout();
  const ConvGeometry& geometry() const { return g_; }
  size_t workspace_bytes(int n, int in_h, int in_w) const;
  // acc = sum over taps and channels of x * (+-1); then the transform. Zero padding.
  void run(const float* in, int n, int in_h, int in_w, const OutputTransform& t, float* out,
           void* workspace, ThreadPool& pool) const;
  void set_strategy(WBStrategy s) { strategy_ = s; }
  WBStrategy strategy() const { return strategy_; }
  void set_algo(ConvAlgo a) { algo_ = a; }  // as Conv2dF32::set_algo
  ConvAlgo algo() const { return algo_; }
  // Bytes of packed weights held now (bit panels and LUT panels of every row; for tests and the
  // memory figures, not to be called while a run may be packing for a new path).
  size_t packed_bytes() const;
  // Whether the kept form is the caller's buffer (view) rather than a copy.
  bool in_place() const { return p_->in_place; }

 private:
  // The bit panels and the LUT panels of table row `row`: each built on first use (thread-safe,
  // once) from whichever form the constructor kept.
  const uint32_t* bit_panels() const;
  const uint32_t* lut_panels(int row) const;

  ConvGeometry g_;
  // One form of the signs is kept from construction: the LUT panels of the row dispatch selects
  // when that row's kernel takes every GEMM (LutKernel::always, AVX-512), else the bit panels
  // ([ceil(OC/32)][KH*KW*IC], 1 bit per weight) the other paths read. The other forms are
  // built when a run first needs them (a forced strategy, set_isa, HBN_FORCE_ISA, a short GEMM
  // for a row that takes only those), so a model keeps one copy of its signs, not one per ISA.
  struct Packed {
    explicit Packed(int rows)
        : lut_once(new std::once_flag[static_cast<size_t>(rows)]), lut(static_cast<size_t>(rows)) {}
    std::once_flag bits_once;
    std::vector<uint32_t> bits;
    const uint32_t* bits_ptr = nullptr;  // bits.data() or the caller's bit panels (view)
    std::unique_ptr<std::once_flag[]> lut_once;
    std::vector<std::vector<uint32_t>> lut;
    std::vector<const uint32_t*> lut_ptr;  // per row: lut[row].data() or the caller's panels
    int kept_row = -1;  // the LUT row kept instead of the bit panels, or -1
    // view(): the caller's LUT panels and their layout, for any row that reads that layout
    const uint32_t* view_lut = nullptr;
    sgemm_detail::LutLayout view_layout{};
    bool in_place = false;
  };
  explicit WBConv2d(const ConvGeometry& g);
  std::unique_ptr<Packed> p_;  // a pointer so that the class stays movable
  WBStrategy strategy_ = WBStrategy::automatic;
  ConvAlgo algo_ = ConvAlgo::automatic;
};

// Scalar reference (double accumulation), out NHWC [n][OH][OW][OC], no transform.
void wbconv2d_reference(const ConvGeometry& g, const float* in, int n, int in_h, int in_w,
                        const word_t* weight_bits, float* out);

}  // namespace hbn

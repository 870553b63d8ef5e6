// WeightBin weight packing: the canonical sign bits repacked once into bit panels (for each
// group of 32 output columns, one uint32 per k whose bit j is the sign of column j, bit 1 = -1,
// types.h) and into the LUT panels of a LUT kernel (wbconv/lut.h), and back.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "hbn/conv_geometry.h"
#include "hbn/types.h"
#include "wbconv/lut.h"

namespace hbn {

using ConsumedFn = std::function<void(const void* begin, size_t bytes)>;

// Repacks canonical conv weight bits [OC][KH][KW][words_for(IC)] into bit panels
// [ceil(OC/32)][K] (K = KH*KW*IC, k = (kh*KW + kw)*IC + ic, the im2col order). Tail columns
// past OC read as +1 and are never stored.
// consumed (optional) is called with growing prefixes of weight_bits as the packing stops
// reading them (a loader releases mapped pages with it); likewise below.
std::vector<uint32_t> pack_bit_panels(const ConvGeometry& g, const word_t* weight_bits,
                                      const ConsumedFn& consumed = nullptr);

// Repacks bit panels ([ceil(N/32)][K], as above) into the LUT panels of a layout
// [ceil(N/nr)][ceil(K/kstep)][nr] uint32 (wbconv/lut.h, UKernelLut). Columns past N and k
// past K are +1; the kernel never stores the former and gives the latter zero inputs.
std::vector<uint32_t> pack_lut_panels(const uint32_t* bit_panels, int64_t K, int64_t N,
                                      const sgemm_detail::LutLayout& layout,
                                      const ConsumedFn& consumed = nullptr);

// The LUT panels straight from canonical conv weight bits (as pack_bit_panels, then the above,
// without the bit panels in between).
std::vector<uint32_t> pack_lut_panels(const ConvGeometry& g, const word_t* weight_bits,
                                      const sgemm_detail::LutLayout& layout,
                                      const ConsumedFn& consumed = nullptr);

// The inverse of pack_lut_panels: bit panels [ceil(N/32)][K] from LUT panels of `layout`.
std::vector<uint32_t> bit_panels_from_lut(const uint32_t* lut_panels, int64_t K, int64_t N,
                                          const sgemm_detail::LutLayout& layout);

// Sign of one canonical weight: +1 or -1.
inline float weight_sign(const ConvGeometry& g, const word_t* bits, int oc, int kh, int kw, int ic) {
  const int64_t words = words_for(g.in_channels);
  const word_t w = bits[((static_cast<int64_t>(oc) * g.kernel_h + kh) * g.kernel_w + kw) * words + ic / kWordBits];
  return ((w >> (ic % kWordBits)) & 1u) ? -1.0f : 1.0f;
}

}  // namespace hbn

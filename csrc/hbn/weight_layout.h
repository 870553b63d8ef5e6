// Kernel weight layouts a .hbn file (format version 2) may store a conv weight in, so that the
// loader uses the bytes in place instead of repacking them (docs/format.md, "Kernel layouts").
// An id names one exact packing; a kernel path that reads another layout repacks from it.
// Ids are file format: never renumber, only append.
#pragma once
#include <cstdint>

namespace hbn {

enum class WeightLayout : uint32_t {
  canonical = 0,      // the tensor's dtype and dims describe its bytes (every tensor of v1)
  bconv_panel32 = 1,  // BConv2d's packed form (bconv/bconv.h, bconv_packed_sizes)
  wbin_bits32 = 2,    // WBConv2d bit panels [ceil(OC/32)][K] uint32 (wbconv/wb_pack.h)
  wbin_lut128g4 = 3,  // WBConv2d LUT panels, nr = 128 columns, G = 4 (the AVX-512 LUT row)
  f32_panel32 = 4,    // Conv2dF32 SGEMM panels [ceil(OC/32)][K][32] float (fconv/conv_f32.h)
};
constexpr uint32_t kMaxWeightLayout = 4;

inline const char* weight_layout_name(uint32_t id) {
  switch (id) {
    case 0: return "canonical";
    case 1: return "bconv_panel32";
    case 2: return "wbin_bits32";
    case 3: return "wbin_lut128g4";
    case 4: return "f32_panel32";
  }
  return "unknown";
}

}  // namespace hbn

// The FullBinConv micro-kernel table. Adding a row: one line here (and its declaration), the
// kernel in its own bconv_<feature>.cc (docs/kernels.md).
#include "bconv/bconv_kernels.h"

namespace hbn {
namespace detail {

BKernel bkernel_avx512();       // bconv_avx512.cc
BKernel bkernel_avx2_lut();     // bconv_avx2.cc: nibble-LUT vpshufb
BKernel bkernel_avx2_popcnt();  // bconv_avx2.cc: scalar popcnt (slower on Zen 4, kept measured)
BKernel bkernel_neon_klanes();  // bconv_klanes_neon.cc: K-in-lanes layout (+ the broadcast tiles)
BKernel bkernel_neon_bcast();   // bconv_neon.cc: broadcast tile on the 32-channel blocks
BKernel bkernel_scalar();       // bconv.cc

const KernelTable<BKernel>& bconv_kernels() {
  static const KernelTable<BKernel> table("bconv", {
      HBN_X86_ROW({kAvx512, "avx512", bkernel_avx512()})
      HBN_X86_ROW({kAvx2, "avx2_lut", bkernel_avx2_lut()})
      HBN_X86_ROW({kAvx2, "avx2_popcnt", bkernel_avx2_popcnt()})
      HBN_ARM64_ROW({kNeon, "neon", bkernel_neon_klanes()})
      HBN_ARM64_ROW({kNeon, "neon_bcast", bkernel_neon_bcast()})
      {kNoFeatures, "scalar", bkernel_scalar()},
  });
  return table;
}

}  // namespace detail
}  // namespace hbn

// The WeightBin table-lookup kernel table. Adding a row: one line here (and its declaration),
// the kernel in its own lut_<feature>.cc (docs/kernels.md). WBConv2d packs LUT panels for
// every supported row.
#include "wbconv/lut.h"

namespace hbn {
namespace sgemm_detail {

LutKernel lut_kernel_avx512();  // lut_avx512.cc: 16-entry tables, 4 inputs per group
LutKernel lut_kernel_avx2();    // lut_avx2.cc: 8-entry tables, 3 inputs per group
LutKernel lut_kernel_neon();    // lut_neon.cc: pixels in the lanes, tables looked up by address

const KernelTable<LutKernel>& lut_kernels() {
  static const KernelTable<LutKernel> table("wbconv_lut", {
      HBN_X86_ROW({kAvx512, "avx512", lut_kernel_avx512()})
      HBN_X86_ROW({kAvx2, "avx2", lut_kernel_avx2()})
      HBN_ARM64_ROW({kNeon, "neon", lut_kernel_neon()})
  });
  return table;
}

}  // namespace sgemm_detail
}  // namespace hbn

// The runtime ops table (pooling, the fused pool/add + pack, the NCHW input paths). Adding a
// row: one line here (and its declaration), the kernels in their own ops_<feature>.cc.
#include "runtime/ops_kernels.h"

namespace hbn {

OpsKernels ops_kernels_avx512();  // ops_avx512.cc
OpsKernels ops_kernels_avx2();    // ops_avx2.cc
OpsKernels ops_kernels_neon();    // ops_neon.cc
OpsKernels ops_kernels_scalar();  // ops.cc: the definitions

const KernelTable<OpsKernels>& ops_kernels() {
  static const KernelTable<OpsKernels> table("ops", {
      HBN_X86_ROW({kAvx512, "avx512", ops_kernels_avx512()})
      HBN_X86_ROW({kAvx2, "avx2", ops_kernels_avx2()})
      HBN_ARM64_ROW({kNeon, "neon", ops_kernels_neon()})
      {kNoFeatures, "scalar", ops_kernels_scalar()},
  });
  return table;
}

}  // namespace hbn

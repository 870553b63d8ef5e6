// The qgemm family's table, best row first (see qgemm.h for what a row computes).
#include "qconv/qgemm.h"

namespace hbn {
namespace qgemm {

const KernelTable<QKernel>& qgemm_kernels() {
  static const KernelTable<QKernel> table(
      "qgemm", {
                   HBN_X86_ROW({kAvx512Vnni, "avx512vnni", qkernel_avx512vnni()})
                   HBN_X86_ROW({kAvxVnni, "avxvnni", qkernel_avxvnni()})
                   HBN_X86_ROW({kAvx2, "avx2", qkernel_avx2()})
                   HBN_ARM64_ROW({kDotprod, "dotprod", qkernel_dotprod()})
                   HBN_ARM64_ROW({kNeon, "neon", qkernel_neon()})
                   {kNoFeatures, "scalar", qkernel_scalar()},
               });
  return table;
}

}  // namespace qgemm
}  // namespace hbn

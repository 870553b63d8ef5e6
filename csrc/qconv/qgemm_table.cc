// The qgemm family's table, best row first (see qgemm.h for what a row computes).
#include "qconv/qgemm.h"

namespace hbn {
namespace qgemm {

const KernelTable<QKernel>& qgemm_kernels() {
  static const KernelTable<QKernel> table(
      "qgemm", {
                   {kNoFeatures, "scalar", qkernel_scalar()},
               });
  return table;
}

}  // namespace qgemm
}  // namespace hbn

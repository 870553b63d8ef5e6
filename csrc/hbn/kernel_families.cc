// Every kernel family's table, for the test loops, the benchmarks, the bindings and `hbn info`.
// A new family: one line here, and a check for it in tests/test_kernel_tables.py (the test
// that proves every row of every table is exercised fails until it has one).
#include "bconv/bconv_kernels.h"
#include "bitpack/bitpack_impl.h"
#include "fconv/ukernel.h"
#include "hbn/kernel_table.h"
#include "peak/peak_impl.h"
#include "qconv/qgemm.h"
#include "runtime/ops_kernels.h"
#include "runtime/transpose.h"
#include "wbconv/lut.h"

namespace hbn {

const std::vector<const KernelFamily*>& kernel_families() {
  static const std::vector<const KernelFamily*> families{
      &detail::bconv_kernels(),         &detail::bitpack_kernels(),     &sgemm_detail::sgemm_kernels(),
      &sgemm_detail::lut_kernels(),     &ops_kernels(),                 &transpose_kernels(),
      &detail::peak_binary_loops(),     &detail::peak_fma_loops(),      &qgemm::qgemm_kernels(),
      &detail::peak_int8_loops(),
  };
  return families;
}

}  // namespace hbn

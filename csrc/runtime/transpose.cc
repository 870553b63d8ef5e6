#include "runtime/transpose.h"

#include "hbn/kernel_table.h"

namespace hbn {

void transpose_block_avx2(const float* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                          int64_t dst_ld);  // transpose_avx2.cc

void transpose_block_reference(const float* src, int64_t rows, int64_t cols, int64_t src_ld,
                               float* dst, int64_t dst_ld) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[j * dst_ld + i] = src[i * src_ld + j];
}

// Adding a row: one line here (and its declaration above), the kernel in its own
// transpose_<feature>.cc. AVX-512 machines take the AVX2 row: for a copy this short the wider
// registers buy nothing.
const KernelTable<TransposeFn>& transpose_kernels() {
  static const KernelTable<TransposeFn> table("transpose", {
      HBN_X86_ROW({kAvx2, "avx2", transpose_block_avx2})
      {kNoFeatures, "scalar", transpose_block_reference},
  });
  return table;
}

void transpose_block(const float* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                     int64_t dst_ld) {
  (*transpose_kernels().select())(src, rows, cols, src_ld, dst, dst_ld);
}

}  // namespace hbn

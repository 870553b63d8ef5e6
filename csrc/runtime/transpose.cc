#include "runtime/transpose.h"

#include "hbn/isa.h"

namespace hbn {

void transpose_block_avx2(const float* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                          int64_t dst_ld);

void transpose_block_reference(const float* src, int64_t rows, int64_t cols, int64_t src_ld,
                               float* dst, int64_t dst_ld) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[j * dst_ld + i] = src[i * src_ld + j];
}

void transpose_block(const float* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                     int64_t dst_ld) {
#if defined(HBN_X86)
  const Isa isa = active_isa();
  if (isa == Isa::avx2 || isa == Isa::avx512) {
    // 8x8 register transposes; AVX-512's wider registers buy nothing for a copy this short.
    transpose_block_avx2(src, rows, cols, src_ld, dst, dst_ld);
    return;
  }
#endif
  transpose_block_reference(src, rows, cols, src_ld, dst, dst_ld);
}

}  // namespace hbn

// 2-D float transpose, the core of the NCHW <-> NHWC conversions at a model's input and output
// (and of flatten before a classifier). On a small layer these copies cost as much as the binary
// convolution itself, so they get a SIMD path like any kernel.
#pragma once
#include <cstdint>

#include "hbn/kernel_table.h"

namespace hbn {

// dst[j * dst_ld + i] = src[i * src_ld + j] for i < rows, j < cols.
void transpose_block(const float* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                     int64_t dst_ld);
// The scalar definition the SIMD path is tested against.
void transpose_block_reference(const float* src, int64_t rows, int64_t cols, int64_t src_ld,
                               float* dst, int64_t dst_ld);

using TransposeFn = void (*)(const float* src, int64_t rows, int64_t cols, int64_t src_ld, float* dst,
                             int64_t dst_ld);
// The table (transpose.cc): one row per compiled path, best first.
const KernelTable<TransposeFn>& transpose_kernels();

}  // namespace hbn

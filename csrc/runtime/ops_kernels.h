// Internal: the per-ISA row kernels behind ops.h, one row each of the "ops" table
// (ops_table.cc). Each function pointer has exactly the contract of the scalar definition in
// ops.cc; every path equals it bit for bit (csrc/tests/test_fused_ops.cc).
#pragma once
#include <cstdint>

#include "hbn/kernel_table.h"
#include "runtime/ops.h"

namespace hbn {

struct OpsKernels {
  // Output rows [b, e) of a max / average pool (row r = image r / out_h, output y r % out_h).
  void (*max_pool_rows)(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p, float* out,
                        int64_t b, int64_t e);
  void (*avg_pool_rows)(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p, float* out,
                        int64_t b, int64_t e);
  // max_pool_fused / add_fused over output rows [b, e), at most kMaxPackSinks sinks.
  void (*max_pool_fused_rows)(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p,
                              float* out, const PackSink* s, int ns, int64_t b, int64_t e);
  void (*add_fused_rows)(const float* a, const float* b, int64_t c, bool relu, float* out, const PackSink* s,
                         int ns, int64_t r0, int64_t r1);
  // Pixels [p0, p1) of one image of c contiguous channel planes (stride cs) to packed rows.
  void (*nchw_pack_pixels)(const float* in, int64_t c, int64_t cs, int64_t p0, int64_t p1, const PackSink& s,
                           word_t* out);
  // Pixels [p0, p1) of one image of 3 contiguous channel planes (stride cs) to NHWC.
  void (*nchw3_to_nhwc)(const float* in, int64_t cs, int64_t p0, int64_t p1, float* out);
  // Output rows [b, e) of max_pool_bits (rows of `words` packed words).
  void (*max_pool_bits_rows)(const word_t* in, int64_t h, int64_t w, int64_t words, const PoolParams& p,
                             const word_t* or_mask, word_t* out, int64_t b, int64_t e);
  // max_pool_rows with pooled pixel q at out + q * os (max_pool_into).
  void (*max_pool_rows_to)(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p, float* out,
                           int64_t os, int64_t b, int64_t e);
};

// The table (ops_table.cc): one row per compiled path, best first.
const KernelTable<OpsKernels>& ops_kernels();

}  // namespace hbn

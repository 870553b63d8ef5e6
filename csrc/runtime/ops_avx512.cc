// The pooling row kernels compiled with avx512 flags (see pool_kernels.h); dispatched by ops.cc.
#include "runtime/pool_kernels.h"

namespace hbn {

void max_pool_rows_avx512(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p,
                          float* out, int64_t b, int64_t e) {
  max_pool_rows_impl(in, h, w, c, p, out, b, e);
}

void avg_pool_rows_avx512(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p,
                          float* out, int64_t b, int64_t e) {
  avg_pool_rows_impl(in, h, w, c, p, out, b, e);
}

}  // namespace hbn

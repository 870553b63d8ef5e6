// Pooling row kernels shared by ops.cc (baseline ISA) and ops_avx2.cc / ops_avx512.cc: the same
// source compiled with each ISA's flags, so the vector paths are the scalar definition
// vectorised over channels (NHWC keeps channels contiguous) and give identical results (max is
// exact; each channel's sum is taken in the same window order on every path).
// Internal linkage on purpose: each translation unit must keep its own ISA's instantiation.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "runtime/ops.h"

namespace hbn {
namespace {

// Output rows [b, e) of a max-pool (row r = image r / out_h, output y r % out_h).
inline void max_pool_rows_impl(const float* __restrict in, int64_t h, int64_t w, int64_t c,
                               const PoolParams& p, float* __restrict out, int64_t b, int64_t e) {
  for (int64_t r = b; r < e; ++r) {
    const int64_t ni = r / p.out_h, oy = r % p.out_h;
    const auto [y0, y1] = p.rows(oy, h);
    for (int64_t ox = 0; ox < p.out_w; ++ox) {
      const auto [x0, x1] = p.cols(ox, w);
      float* __restrict o = out + (r * p.out_w + ox) * c;
      // windows are never empty (PyTorch's padding and ceil rules guarantee a valid start),
      // so the first element seeds the max: no -inf fill pass
      std::memcpy(o, in + ((ni * h + y0) * w + x0) * c, sizeof(float) * c);
      for (int64_t y = y0; y < y1; ++y)
        for (int64_t x = x0; x < x1; ++x) {
          const float* __restrict src = in + ((ni * h + y) * w + x) * c;
          for (int64_t ch = 0; ch < c; ++ch) o[ch] = o[ch] < src[ch] ? src[ch] : o[ch];
        }
    }
  }
}

inline void avg_pool_rows_impl(const float* __restrict in, int64_t h, int64_t w, int64_t c,
                               const PoolParams& p, float* __restrict out, int64_t b, int64_t e) {
  for (int64_t r = b; r < e; ++r) {
    const int64_t ni = r / p.out_h, oy = r % p.out_h;
    int64_t y0 = oy * p.sh - p.ph, y1 = std::min<int64_t>(y0 + p.kh, h + p.ph);
    const int64_t pool_h = y1 - y0;
    y0 = std::max<int64_t>(y0, 0);
    y1 = std::min<int64_t>(y1, h);
    for (int64_t ox = 0; ox < p.out_w; ++ox) {
      int64_t x0 = ox * p.sw - p.pw, x1 = std::min<int64_t>(x0 + p.kw, w + p.pw);
      const int64_t pool_w = x1 - x0;
      x0 = std::max<int64_t>(x0, 0);
      x1 = std::min<int64_t>(x1, w);
      const int64_t div = p.count_include_pad ? pool_h * pool_w : (y1 - y0) * (x1 - x0);
      float* __restrict o = out + (r * p.out_w + ox) * c;
      for (int64_t ch = 0; ch < c; ++ch) o[ch] = 0.0f;
      for (int64_t y = y0; y < y1; ++y)
        for (int64_t x = x0; x < x1; ++x) {
          const float* __restrict src = in + ((ni * h + y) * w + x) * c;
          for (int64_t ch = 0; ch < c; ++ch) o[ch] += src[ch];
        }
      const float inv = div > 0 ? 1.0f / static_cast<float>(div) : 0.0f;
      for (int64_t ch = 0; ch < c; ++ch) o[ch] *= inv;
    }
  }
}

}  // namespace
}  // namespace hbn

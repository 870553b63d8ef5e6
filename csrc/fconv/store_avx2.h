// The AVX2 half-tile store shared by the float micro-kernels (fconv/ukernel_avx2.cc) and the
// LUT kernel (wbconv/lut_avx2.cc). Internal linkage on purpose: include it only from
// translation units compiled with the AVX2 flags.
#pragma once
#include <immintrin.h>

#include "fconv/ukernel.h"

namespace hbn {
namespace sgemm_detail {
namespace {

// Stores one 16-column half (h) of the tile; the caller guarantees all 32 columns are valid.
template <int R>
inline void store_half(__m256 (&acc)[R][2], const Tile& tile, int h) {
  const OutputTransform* t = tile.t;
  const int64_t n0 = tile.n0 + 16 * h;
  const __m256 zero = _mm256_setzero_ps();
  __m256 sc0 = zero, sc1 = zero, bi0 = zero, bi1 = zero;
  if (t && t->scale) { sc0 = _mm256_loadu_ps(t->scale + n0); sc1 = _mm256_loadu_ps(t->scale + n0 + 8); }
  if (t && t->bias) { bi0 = _mm256_loadu_ps(t->bias + n0); bi1 = _mm256_loadu_ps(t->bias + n0 + 8); }
  const bool relu = t && t->act == Activation::relu;
  const bool res_relu = t && t->residual_act == Activation::relu;
  for (int r = 0; r < R; ++r) {
    float* c = tile.c + r * tile.ldc + 16 * h;
    const float* res = t && t->residual ? t->residual + (tile.m0 + r) * t->residual_ld + n0 : nullptr;
    __m256 v0 = acc[r][0], v1 = acc[r][1];
    if (tile.accumulate) {
      v0 = _mm256_add_ps(v0, _mm256_loadu_ps(c));
      v1 = _mm256_add_ps(v1, _mm256_loadu_ps(c + 8));
    }
    if (t) {
      if (t->scale) { v0 = _mm256_mul_ps(v0, sc0); v1 = _mm256_mul_ps(v1, sc1); }
      if (t->pixel_scale) {
        const __m256 ps = _mm256_set1_ps(t->pixel_scale[tile.m0 + r]);
        v0 = _mm256_mul_ps(v0, ps);
        v1 = _mm256_mul_ps(v1, ps);
      }
      if (t->bias) { v0 = _mm256_add_ps(v0, bi0); v1 = _mm256_add_ps(v1, bi1); }
      // max(v, 0) returns its second operand for NaN, matching apply_transform's !(y > 0).
      if (relu) { v0 = _mm256_max_ps(v0, zero); v1 = _mm256_max_ps(v1, zero); }
      if (res) {  // a fused residual add (OutputTransform::residual), then its ReLU
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(res));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(res + 8));
        if (res_relu) { v0 = _mm256_max_ps(v0, zero); v1 = _mm256_max_ps(v1, zero); }
      }
    }
    _mm256_storeu_ps(c, v0);
    _mm256_storeu_ps(c + 8, v1);
  }
}

}  // namespace
}  // namespace sgemm_detail
}  // namespace hbn

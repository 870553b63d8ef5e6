// The AVX-512 tile store shared by the float micro-kernels (fconv/ukernel_avx512.cc) and the
// LUT kernel (wbconv/lut_avx512.cc). Internal linkage on purpose: include it only from
// translation units compiled with the AVX-512 flags.
#pragma once
#include <immintrin.h>

#include "fconv/ukernel.h"

namespace hbn {
namespace sgemm_detail {
namespace {

// Stores the first NV 16-column halves of the tile. Partial tiles (nr < 32: the last panel of
// an N that is not a multiple of 32) use masked loads and stores, which never touch the
// columns past nr (nor fault on them), so they stay in registers instead of going through the
// scalar store.
template <int R, int NV>
inline void store_tile(__m512 (&acc)[R][2], const Tile& tile) {
  __mmask16 mk[2];
  for (int h = 0; h < 2; ++h) {
    const int valid = tile.nr - 16 * h;
    mk[h] = valid >= 16 ? static_cast<__mmask16>(0xffff)
                        : static_cast<__mmask16>(valid > 0 ? (1u << valid) - 1 : 0);
  }
  const OutputTransform* t = tile.t;
  const __m512 zero = _mm512_setzero_ps();
  __m512 sc[2] = {zero, zero}, bi[2] = {zero, zero};
  for (int h = 0; h < NV; ++h) {
    if (t && t->scale) sc[h] = _mm512_maskz_loadu_ps(mk[h], t->scale + tile.n0 + 16 * h);
    if (t && t->bias) bi[h] = _mm512_maskz_loadu_ps(mk[h], t->bias + tile.n0 + 16 * h);
  }
  const bool relu = t && t->act == Activation::relu;
  const bool res_relu = t && t->residual_act == Activation::relu;
  for (int r = 0; r < R; ++r) {
    float* c = tile.c + r * tile.ldc;
    const float* res = t && t->residual ? t->residual + (tile.m0 + r) * t->residual_ld + tile.n0 : nullptr;
    __m512 ps = zero;
    if (t && t->pixel_scale) ps = _mm512_set1_ps(t->pixel_scale[tile.m0 + r]);
    for (int h = 0; h < NV; ++h) {
      __m512 v = acc[r][h];
      if (tile.accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk[h], c + 16 * h));
      if (t) {
        if (t->scale) v = _mm512_mul_ps(v, sc[h]);
        if (t->pixel_scale) v = _mm512_mul_ps(v, ps);
        if (t->bias) v = _mm512_add_ps(v, bi[h]);
        // Keep v only where v > 0 (ordered), exactly apply_transform's !(y > 0) -> 0 (NaN too).
        if (relu) v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v);
        if (res) {  // a fused residual add (OutputTransform::residual), then its ReLU
          v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk[h], res + 16 * h));
          if (res_relu) v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ), v);
        }
      }
      _mm512_mask_storeu_ps(c + 16 * h, mk[h], v);
    }
  }
}

}  // namespace
}  // namespace sgemm_detail
}  // namespace hbn

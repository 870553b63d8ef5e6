// The pooling row kernels compiled with avx512 flags (see pool_kernels.h), the fused row kernels
// (fused_kernels.h) over 16-lane registers, and the AVX-512 layout kernels: the "avx512" row of
// the ops table.
#include <immintrin.h>

// GCC 12 reports the intentionally undefined lanes inside AVX-512 intrinsics (the masked
// loads' pass-through operand) as maybe-uninitialized once the row kernels are instantiated
// for several shapes, as in bconv_avx512.cc; the values are fully defined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "runtime/fused_kernels.h"
#include "runtime/ops_kernels.h"
#include "runtime/pool_kernels.h"

namespace hbn {
namespace {

struct V512 {
  static constexpr int L = 16;
  static constexpr int kRegs = 32;
  using reg = __m512;
  static __mmask16 lanes(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1u); }
  static reg load(const float* p, int64_t n) {
    return n == 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(lanes(n), p);
  }
  static void store(float* p, reg r, int64_t n) {
    if (n == 16) _mm512_storeu_ps(p, r);
    else _mm512_mask_storeu_ps(p, lanes(n), r);
  }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }  // b if unordered or a <= b
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg relu(reg y) {
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_GT_OQ), y);
  }
  static uint32_t bits(reg y, const float* sign, const float* thr) {
    const reg yx = _mm512_xor_ps(y, _mm512_loadu_ps(sign));
    return _mm512_cmp_ps_mask(yx, _mm512_loadu_ps(thr), _CMP_LT_OQ);
  }
};

}  // namespace

void max_pool_rows_avx512(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p,
                          float* out, int64_t b, int64_t e) {
  max_pool_fused_rows<V512>(in, h, w, c, p, out, nullptr, 0, b, e);
}

void avg_pool_rows_avx512(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p,
                          float* out, int64_t b, int64_t e) {
  avg_pool_rows_impl(in, h, w, c, p, out, b, e);
}

void max_pool_fused_rows_avx512(const float* in, int64_t h, int64_t w, int64_t c,
                                const PoolParams& p, float* out, const PackSink* s, int ns,
                                int64_t b, int64_t e) {
  max_pool_fused_rows<V512>(in, h, w, c, p, out, s, ns, b, e);
}

void max_pool_bits_rows_avx512(const word_t* in, int64_t h, int64_t w, int64_t words, const PoolParams& p,
                               const word_t* or_mask, word_t* out, int64_t b, int64_t e) {
  max_pool_bits_rows_impl(in, h, w, words, p, or_mask, out, b, e);
}

void add_fused_rows_avx512(const float* a, const float* b, int64_t c, bool relu, float* out,
                           const PackSink* s, int ns, int64_t r0, int64_t r1) {
  add_fused_rows<V512>(a, b, c, relu, out, s, ns, r0, r1);
}

// Pixels [p0, p1) of one image whose channel planes are contiguous (plane stride cs floats) to
// packed rows: 16 pixels at a time, one channel per step, each channel's 16 comparison bits
// OR-ed into the 16 pixels' words held in two registers of 8 x uint64.
void nchw_pack_pixels_avx512(const float* in, int64_t c, int64_t cs, int64_t p0, int64_t p1,
                             const PackSink& s, word_t* out) {
  const int64_t words = words_for(c);
  alignas(64) word_t tmp[16];
  for (int64_t p = p0; p < p1; p += 16) {
    const int64_t n = std::min<int64_t>(16, p1 - p);
    const __mmask16 m = V512::lanes(n);
    for (int64_t k = 0; k < words; ++k) {
      __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
      __m512i bit = _mm512_set1_epi64(1);
      const int64_t c1 = std::min<int64_t>(c, (k + 1) * kWordBits);
      for (int64_t ch = k * kWordBits; ch < c1; ++ch) {
        const __m512 x = _mm512_xor_ps(_mm512_maskz_loadu_ps(m, in + ch * cs + p), _mm512_set1_ps(s.sign[ch]));
        const __mmask16 b = _mm512_mask_cmp_ps_mask(m, x, _mm512_set1_ps(s.thr_x[ch]), _CMP_LT_OQ);
        lo = _mm512_mask_or_epi64(lo, static_cast<__mmask8>(b), lo, bit);
        hi = _mm512_mask_or_epi64(hi, static_cast<__mmask8>(b >> 8), hi, bit);
        bit = _mm512_add_epi64(bit, bit);
      }
      word_t* o = out + p * words + k;
      if (words == 1 && n == 16) {
        _mm512_storeu_si512(o, lo);
        _mm512_storeu_si512(o + 8, hi);
        continue;
      }
      _mm512_store_si512(tmp, lo);
      _mm512_store_si512(tmp + 8, hi);
      for (int64_t i = 0; i < n; ++i) o[i * words] = tmp[i];
    }
  }
}

// Pixels [p0, p1) of one image of 3 contiguous channel planes to NHWC: 16 pixels (48 floats,
// three registers) per step, interleaved with two-source permutes.
void nchw3_to_nhwc_avx512(const float* in, int64_t cs, int64_t p0, int64_t p1, float* out) {
  // out lane j of register q holds pixel (16q + j) / 3, channel (16q + j) % 3.
  alignas(64) static const int32_t kIdx[3][16] = {
      {0, 16, 0, 1, 17, 1, 2, 18, 2, 3, 19, 3, 4, 20, 4, 5},
      {21, 5, 6, 22, 6, 7, 23, 7, 8, 24, 8, 9, 25, 9, 10, 26},
      {10, 11, 27, 11, 12, 28, 12, 13, 29, 13, 14, 30, 14, 15, 31, 15}};
  // lanes that take channel 2 (the rest come from the channel 0/1 pair)
  constexpr __mmask16 kC2[3] = {0x4924, 0x2492, 0x9249};
  int64_t p = p0;
  for (; p + 16 <= p1; p += 16) {
    const __m512 a = _mm512_loadu_ps(in + p), b = _mm512_loadu_ps(in + cs + p),
                 c = _mm512_loadu_ps(in + 2 * cs + p);
    float* o = out + p * 3;
    for (int q = 0; q < 3; ++q) {
      const __m512i idx = _mm512_load_si512(kIdx[q]);
      __m512 ab = _mm512_permutex2var_ps(a, idx, b);
      // channel-2 lanes: the same index taken mod 16 selects from c
      ab = _mm512_mask_permutexvar_ps(ab, kC2[q], idx, c);
      _mm512_storeu_ps(o + 16 * q, ab);
    }
  }
  for (; p < p1; ++p)
    for (int ch = 0; ch < 3; ++ch) out[p * 3 + ch] = in[ch * cs + p];
}

OpsKernels ops_kernels_avx512() {
  return OpsKernels{max_pool_rows_avx512, avg_pool_rows_avx512, max_pool_fused_rows_avx512,
                    add_fused_rows_avx512, nchw_pack_pixels_avx512, nchw3_to_nhwc_avx512,
                    max_pool_bits_rows_avx512, max_pool_rows_to<V512>};
}

}  // namespace hbn

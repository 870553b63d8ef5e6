// The pooling row kernels compiled with avx2 flags (see pool_kernels.h) and the fused row
// kernels (fused_kernels.h) over 8-lane registers: the "avx2" row of the ops table.
#include <immintrin.h>

#include "runtime/fused_kernels.h"
#include "runtime/ops_kernels.h"
#include "runtime/pool_kernels.h"

namespace hbn {
namespace {

struct V256 {
  static constexpr int L = 8;
  static constexpr int kRegs = 16;
  using reg = __m256;
  static __m256i lanes(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static reg load(const float* p, int64_t n) {
    return n == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lanes(n));
  }
  static void store(float* p, reg r, int64_t n) {
    if (n == 8) _mm256_storeu_ps(p, r);
    else _mm256_maskstore_ps(p, lanes(n), r);
  }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }  // b if unordered or a <= b
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg relu(reg y) { return _mm256_and_ps(y, _mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ)); }
  static uint32_t bits(reg y, const float* sign, const float* thr) {
    const reg yx = _mm256_xor_ps(y, _mm256_loadu_ps(sign));
    return static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(yx, _mm256_loadu_ps(thr), _CMP_LT_OQ)));
  }
};

}  // namespace

void max_pool_rows_avx2(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p,
                        float* out, int64_t b, int64_t e) {
  max_pool_fused_rows<V256>(in, h, w, c, p, out, nullptr, 0, b, e);
}

void avg_pool_rows_avx2(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p,
                        float* out, int64_t b, int64_t e) {
  avg_pool_rows_impl(in, h, w, c, p, out, b, e);
}

void max_pool_fused_rows_avx2(const float* in, int64_t h, int64_t w, int64_t c,
                              const PoolParams& p, float* out, const PackSink* s, int ns,
                              int64_t b, int64_t e) {
  max_pool_fused_rows<V256>(in, h, w, c, p, out, s, ns, b, e);
}

void add_fused_rows_avx2(const float* a, const float* b, int64_t c, bool relu, float* out,
                         const PackSink* s, int ns, int64_t r0, int64_t r1) {
  add_fused_rows<V256>(a, b, c, relu, out, s, ns, r0, r1);
}

// As nchw_pack_pixels_avx512 with 8 pixels per step: each channel's 8 comparison bits are
// spread to the pixels' words through a 16-entry table of 4-lane masks.
void nchw_pack_pixels_avx2(const float* in, int64_t c, int64_t cs, int64_t p0, int64_t p1,
                           const PackSink& s, word_t* out) {
  const int64_t words = words_for(c);
  alignas(32) word_t tmp[8];
  alignas(32) static const int64_t kSpread[16][4] = {
      {0, 0, 0, 0}, {-1, 0, 0, 0}, {0, -1, 0, 0}, {-1, -1, 0, 0},
      {0, 0, -1, 0}, {-1, 0, -1, 0}, {0, -1, -1, 0}, {-1, -1, -1, 0},
      {0, 0, 0, -1}, {-1, 0, 0, -1}, {0, -1, 0, -1}, {-1, -1, 0, -1},
      {0, 0, -1, -1}, {-1, 0, -1, -1}, {0, -1, -1, -1}, {-1, -1, -1, -1}};
  for (int64_t p = p0; p < p1; p += 8) {
    const int64_t n = std::min<int64_t>(8, p1 - p);
    const uint32_t keep = (1u << n) - 1u;
    for (int64_t k = 0; k < words; ++k) {
      __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
      __m256i bit = _mm256_set1_epi64x(1);
      const int64_t c1 = std::min<int64_t>(c, (k + 1) * kWordBits);
      for (int64_t ch = k * kWordBits; ch < c1; ++ch) {
        const __m256 x = _mm256_xor_ps(V256::load(in + ch * cs + p, n), _mm256_set1_ps(s.sign[ch]));
        const uint32_t b = static_cast<uint32_t>(_mm256_movemask_ps(
                               _mm256_cmp_ps(x, _mm256_set1_ps(s.thr_x[ch]), _CMP_LT_OQ))) & keep;
        lo = _mm256_or_si256(lo, _mm256_and_si256(bit, _mm256_load_si256(reinterpret_cast<const __m256i*>(kSpread[b & 15]))));
        hi = _mm256_or_si256(hi, _mm256_and_si256(bit, _mm256_load_si256(reinterpret_cast<const __m256i*>(kSpread[b >> 4]))));
        bit = _mm256_add_epi64(bit, bit);
      }
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), lo);
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + 4), hi);
      word_t* o = out + p * words + k;
      for (int64_t i = 0; i < n; ++i) o[i * words] = tmp[i];
    }
  }
}

OpsKernels ops_kernels_scalar();

void max_pool_bits_rows_avx2(const word_t* in, int64_t h, int64_t w, int64_t words, const PoolParams& p,
                             const word_t* or_mask, word_t* out, int64_t b, int64_t e) {
  max_pool_bits_rows_impl(in, h, w, words, p, or_mask, out, b, e);
}

// The AVX2 row; the 3-channel input layout keeps the scalar kernel (straight copies).
OpsKernels ops_kernels_avx2() {
  OpsKernels k = ops_kernels_scalar();
  k.max_pool_rows = max_pool_rows_avx2;
  k.avg_pool_rows = avg_pool_rows_avx2;
  k.max_pool_fused_rows = max_pool_fused_rows_avx2;
  k.add_fused_rows = add_fused_rows_avx2;
  k.nchw_pack_pixels = nchw_pack_pixels_avx2;
  k.max_pool_bits_rows = max_pool_bits_rows_avx2;
  k.max_pool_rows_to = max_pool_rows_to<V256>;
  return k;
}

}  // namespace hbn

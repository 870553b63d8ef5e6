// qgemm row for AVX-VNNI (the VEX-encoded VPDPBUSD on ymm): as the AVX-512 VNNI row with the
// 16 channels in two ymm accumulators per row, 6 rows (12 accumulators).
#include <immintrin.h>

#include <cstring>

#include "hbn/dispatch_rows.h"
#include "qconv/qgemm.h"

namespace hbn {
namespace qgemm {
namespace {

constexpr int kMR = 6;

template <int R>
void tile_r(const uint8_t* a, int64_t lda, const int8_t* panel, int64_t k4, int32_t* acc) {
  __m256i c[R][2];
  for (int r = 0; r < R; ++r) c[r][0] = c[r][1] = _mm256_setzero_si256();
  const int64_t groups = k4 / kQKGroup;
  for (int64_t g = 0; g < groups; ++g) {
    const int8_t* p = panel + g * kQKGroup * kQNR;
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    for (int r = 0; r < R; ++r) {
      int32_t v;
      std::memcpy(&v, a + r * lda + g * kQKGroup, sizeof v);
      const __m256i av = _mm256_set1_epi32(v);
      c[r][0] = _mm256_dpbusd_avx_epi32(c[r][0], av, b0);
      c[r][1] = _mm256_dpbusd_avx_epi32(c[r][1], av, b1);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + r * kQNR), c[r][0]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + r * kQNR + 8), c[r][1]);
  }
}

void tile(const uint8_t* a, int64_t lda, int rows, const int8_t* panel, int64_t k4, const int32_t*,
          int32_t* acc) {
  dispatch_rows<kMR>(rows, [&](auto r) { tile_r<decltype(r)::value>(a, lda, panel, k4, acc); });
}

}  // namespace

QKernel qkernel_avxvnni() { return {kMR, tile}; }

}  // namespace qgemm
}  // namespace hbn

// qgemm row for AVX-VNNI (the VEX-encoded VPDPBUSD on ymm): as the AVX-512 VNNI row with the
// 16 channels in two ymm accumulators per row, 6 rows (12 accumulators; fewer leave the
// instruction's latency exposed: 4 rows ran at 71 GMAC/s on AlexNet conv1, 6 at 106).
#include <immintrin.h>

#include <cstring>

#include "hbn/dispatch_rows.h"
#include "qconv/qgemm.h"
#include "qconv/qgemm_rows.h"

namespace hbn {
namespace qgemm {
namespace {

constexpr int kMR = 6;

// One 6 x 16 tile: group g's 4 A bytes of row r are at a_of(g) + r * lda (the GEMM's packed A,
// or the direct conv's image through the QRuns group offsets).
// The direct tile's tail (QRuns): tgroups more groups, group u of row r at t + r * ldt + 4u.
template <int R, class AOf>
inline __attribute__((always_inline)) void tile_core(AOf a_of, int64_t lda, const int8_t* panel,
                                                     int64_t k4, int32_t* acc, const uint8_t* t = nullptr,
                                                     int64_t ldt = 0, int64_t tgroups = 0) {
  __m256i c0[R], c1[R];  // channels 0-7, 8-15 (two 1-D arrays: GCC keeps them in registers)
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) c0[r] = c1[r] = _mm256_setzero_si256();
  const int64_t body = k4 / kQKGroup - tgroups;
#define HBN_VNNI_GROUP(g, ag, ld)                                                 \
  {                                                                               \
    const int8_t* p = panel + (g) * kQKGroup * kQNR;                              \
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));  \
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32)); \
    _Pragma("GCC unroll 16") for (int r = 0; r < R; ++r) {                        \
      int32_t v;                                                                  \
      std::memcpy(&v, (ag) + r * (ld), sizeof v);                                 \
      const __m256i av = _mm256_set1_epi32(v);                                    \
      c0[r] = _mm256_dpbusd_avx_epi32(c0[r], av, b0);                             \
      c1[r] = _mm256_dpbusd_avx_epi32(c1[r], av, b1);                             \
    }                                                                             \
  }
  for (int64_t g = 0; g < body; ++g) HBN_VNNI_GROUP(g, a_of(g), lda)
  for (int64_t u = 0; u < tgroups; ++u) HBN_VNNI_GROUP(body + u, t + u * kQKGroup, ldt)
#undef HBN_VNNI_GROUP
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + r * kQNR), c0[r]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + r * kQNR + 8), c1[r]);
  }
}

template <int R>
void tile_r(const uint8_t* a, int64_t lda, const int8_t* panel, int64_t k4, int32_t* acc) {
  tile_core<R>([a](int64_t g) { return a + g * kQKGroup; }, lda, panel, k4, acc);
}

void tile(const uint8_t* a, int64_t lda, int rows, const int8_t* panel, int64_t k4, const int32_t*,
          int32_t* acc) {
  dispatch_rows<kMR>(rows, [&](auto r) { tile_r<decltype(r)::value>(a, lda, panel, k4, acc); });
}

// The direct conv tile (QRuns): each group's A bytes at A.koff[g] past the pixel.
template <int R>
void direct_r(const QRuns& A, const int8_t* panel, int64_t k4, int32_t* acc) {
  tile_core<R>([&A](int64_t g) { return A.a + A.koff[g]; }, A.lda, panel, k4, acc, A.t, A.ldt, A.tgroups);
}

void direct(const QRuns& a, int rows, int np, const int8_t* panel, int64_t k4, const int32_t*, int32_t* acc) {
  for (int i = 0; i < np; ++i)
    dispatch_rows<kMR>(rows, [&](auto r) {
      direct_r<decltype(r)::value>(a, panel + i * k4 * kQNR, k4, acc + i * kQMaxMR * kQNR);
    });
}

}  // namespace

QKernel qkernel_avxvnni() {
  return {kMR, tile, nullptr, store_rows_impl, quantize_impl, store_bits_impl, direct, kMR, 1};
}

}  // namespace qgemm
}  // namespace hbn

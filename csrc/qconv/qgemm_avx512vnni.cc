// qgemm row for AVX-512 VNNI: one VPDPBUSD zmm per row and k group multiplies the row's 4
// uint8 values (broadcast) by 16 channels x 4 int8 weights and adds the 4 products into each
// channel's int32 lane. 12 rows x 16 channels: 12 independent accumulators cover the
// instruction's latency at one or two issues per cycle.
#include <immintrin.h>

#include <cstring>

#include "hbn/dispatch_rows.h"
#include "qconv/qgemm.h"

namespace hbn {
namespace qgemm {
namespace {

constexpr int kMR = 12;

template <int R>
void tile_r(const uint8_t* a, int64_t lda, const int8_t* panel, int64_t k4, int32_t* acc) {
  __m512i c[R];
  for (int r = 0; r < R; ++r) c[r] = _mm512_setzero_si512();
  const int64_t groups = k4 / kQKGroup;
  for (int64_t g = 0; g < groups; ++g) {
    const __m512i b = _mm512_loadu_si512(panel + g * kQKGroup * kQNR);
    for (int r = 0; r < R; ++r) {
      int32_t v;
      std::memcpy(&v, a + r * lda + g * kQKGroup, sizeof v);
      c[r] = _mm512_dpbusd_epi32(c[r], _mm512_set1_epi32(v), b);
    }
  }
  for (int r = 0; r < R; ++r) _mm512_storeu_si512(acc + r * kQNR, c[r]);
}

void tile(const uint8_t* a, int64_t lda, int rows, const int8_t* panel, int64_t k4, const int32_t*,
          int32_t* acc) {
  dispatch_rows<kMR>(rows, [&](auto r) { tile_r<decltype(r)::value>(a, lda, panel, k4, acc); });
}

}  // namespace

QKernel qkernel_avx512vnni() { return {kMR, tile}; }

}  // namespace qgemm
}  // namespace hbn

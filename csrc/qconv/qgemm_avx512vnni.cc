// qgemm row for AVX-512 VNNI: one VPDPBUSD zmm per row and k group multiplies the row's 4
// uint8 values (broadcast) by 16 channels x 4 int8 weights and adds the 4 products into each
// channel's int32 lane. 12 rows x 16 channels: 12 independent accumulators cover the
// instruction's latency at one or two issues per cycle.
#include <immintrin.h>

#include <cstring>

#include "hbn/dispatch_rows.h"
#include "qconv/qgemm.h"
#include "qconv/qgemm_rows.h"

namespace hbn {
namespace qgemm {
namespace {

constexpr int kMR = 12;

// c += dot4(a u8, b s8) per lane. Through asm with the accumulator tied in place: GCC 12 turns
// the intrinsic's chains into a register copy per instruction (24 moves per 12 VPDPBUSD in
// this loop). A macro, not a function: an accumulator bound to a reference stays in memory.
#define HBN_DPBUSD(c, a, b) asm("vpdpbusd %[bb], %[aa], %[cc]" : [cc] "+v"(c) : [aa] "v"(a), [bb] "v"(b))

template <int R>
void tile_r(const uint8_t* a, int64_t lda, const int8_t* panel, int64_t k4, int32_t* acc) {
  __m512i c[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) c[r] = _mm512_setzero_si512();
  const int64_t groups = k4 / kQKGroup;
  for (int64_t g = 0; g < groups; ++g) {
    const __m512i b = _mm512_loadu_si512(panel + g * kQKGroup * kQNR);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      int32_t v;
      std::memcpy(&v, a + r * lda + g * kQKGroup, sizeof v);
      HBN_DPBUSD(c[r], _mm512_set1_epi32(v), b);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) _mm512_storeu_si512(acc + r * kQNR, c[r]);
}

void tile(const uint8_t* a, int64_t lda, int rows, const int8_t* panel, int64_t k4, const int32_t*,
          int32_t* acc) {
  dispatch_rows<kMR>(rows, [&](auto r) { tile_r<decltype(r)::value>(a, lda, panel, k4, acc); });
}

}  // namespace

QKernel qkernel_avx512vnni() { return {kMR, tile, store_rows_impl, quantize_impl}; }

}  // namespace qgemm
}  // namespace hbn

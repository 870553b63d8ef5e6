// qgemm row for AVX2, exact. VPMADDUBSW (u8 x s8 -> pairs summed in int16) would saturate: two
// products 255 * 127 add to 64770 > 32767. So both operands are widened to int16 (VPMOVZXBW for
// the activations, VPMOVSXBW for the weights) and VPMADDWD adds product pairs into int32
// lanes, exactly. A weight group (16 channels x 4 k) widens into 4 ymm of 4 channels x 4 k;
// VPMADDWD against the row's 4 values (repeated) leaves per channel two lanes (k0+k1, k2+k3),
// kept apart in the accumulators and added once at the end of the tile. Each lane sums one pair
// per group (K4 / 4 pairs of at most 2 * 255 * 127), and the two lanes add up to the exact
// D, so nothing leaves int32 for K4 <= kQMaxK.
#include <immintrin.h>

#include <cstring>

#include "hbn/dispatch_rows.h"
#include "qconv/qgemm.h"
#include "qconv/qgemm_rows.h"

namespace hbn {
namespace qgemm {
namespace {

// 3 rows: 12 accumulators and 4 widened weight registers exceed the 16 ymm registers, so GCC
// keeps some accumulators on the stack; still faster than 2 rows (AlexNet conv1 ~50 vs ~44
// GMAC/s on Zen 5), which widen the weights once per 2 rows instead of 3.
constexpr int kMR = 3;

template <int R>
void tile_r(const uint8_t* a, int64_t lda, const int8_t* panel, int64_t k4, int32_t* acc) {
  // c<i>[r]: channels 4i..4i+3 of row r, two lanes each (1-D arrays: GCC keeps them in registers).
  __m256i c0[R], c1[R], c2[R], c3[R];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) c0[r] = c1[r] = c2[r] = c3[r] = _mm256_setzero_si256();
  const int64_t groups = k4 / kQKGroup;
  for (int64_t g = 0; g < groups; ++g) {
    const int8_t* p = panel + g * kQKGroup * kQNR;
    const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
    const __m256i w2 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 32)));
    const __m256i w3 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 48)));
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      int32_t v;
      std::memcpy(&v, a + r * lda + g * kQKGroup, sizeof v);
      const __m256i av = _mm256_cvtepu8_epi16(_mm_set1_epi32(v));  // a0 a1 a2 a3 a0 ... (u16)
      c0[r] = _mm256_add_epi32(c0[r], _mm256_madd_epi16(av, w0));
      c1[r] = _mm256_add_epi32(c1[r], _mm256_madd_epi16(av, w1));
      c2[r] = _mm256_add_epi32(c2[r], _mm256_madd_epi16(av, w2));
      c3[r] = _mm256_add_epi32(c3[r], _mm256_madd_epi16(av, w3));
    }
  }
  for (int r = 0; r < R; ++r) {
    alignas(32) int32_t lanes[32];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), c0[r]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes + 8), c1[r]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes + 16), c2[r]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes + 24), c3[r]);
    // lanes[2j], lanes[2j + 1]: channel j's two pair sums (added mod 2^32, see qgemm.h).
    for (int j = 0; j < kQNR; ++j)
      acc[r * kQNR + j] = static_cast<int32_t>(static_cast<uint32_t>(lanes[2 * j]) + static_cast<uint32_t>(lanes[2 * j + 1]));
  }
}

void tile(const uint8_t* a, int64_t lda, int rows, const int8_t* panel, int64_t k4, const int32_t*,
          int32_t* acc) {
  dispatch_rows<kMR>(rows, [&](auto r) { tile_r<decltype(r)::value>(a, lda, panel, k4, acc); });
}

}  // namespace

QKernel qkernel_avx2() { return {kMR, tile, nullptr, store_rows_impl, quantize_impl, store_bits_impl}; }

}  // namespace qgemm
}  // namespace hbn

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

// c += dot4(a u8, b s8) per lane, through asm with the accumulator tied in place (as the
// avx512vnni row's HBN_DPBUSD), for the tile with the in-register output stage only: with the
// intrinsic there GCC 12 copied accumulators and kept them on the stack inside the K loop,
// while the asm form made the plain tiles (GEMM, direct to acc) 2x slower.
#define HBN_VPDPBUSD(c, a, b) asm("%{vex%} vpdpbusd %[bb], %[aa], %[cc]" : [cc] "+x"(c) : [aa] "x"(a), [bb] "x"(b))

// One 6 x 16 tile: group g's 4 A bytes of row r are at a_of(g) + r * lda (the GEMM's packed A,
// or the direct conv's image through the QRuns group offsets).
// The direct tile's tail (QRuns): tgroups more groups, group u of row r at t + r * ldt + 4u.
// ST: the float output stage instead of acc (QDirectStoreFn, one panel, RELU its activation),
// as the avx512vnni row's: accumulators started at -zc, then per row a conversion, a multiply,
// an add and a max.
template <int R, class AOf, bool ST = false, bool RELU = false>
inline __attribute__((always_inline)) void tile_core(AOf a_of, int64_t lda, const int8_t* panel,
                                                     int64_t k4, int32_t* acc, const uint8_t* t = nullptr,
                                                     int64_t ldt = 0, int64_t tgroups = 0,
                                                     const QStore* st = nullptr, float* y = nullptr,
                                                     int64_t ldy = 0) {
  __m256i c0[R], c1[R];  // channels 0-7, 8-15 (two 1-D arrays: GCC keeps them in registers)
  __m256i z0 = _mm256_setzero_si256(), z1 = z0;
  if (ST) {
    z0 = _mm256_sub_epi32(z0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(st->zc)));
    z1 = _mm256_sub_epi32(z1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(st->zc + 8)));
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) c0[r] = z0, c1[r] = z1;
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
      if (ST) {                                                                   \
        HBN_VPDPBUSD(c0[r], av, b0);                                              \
        HBN_VPDPBUSD(c1[r], av, b1);                                              \
      } else {                                                                    \
        c0[r] = _mm256_dpbusd_avx_epi32(c0[r], av, b0);                           \
        c1[r] = _mm256_dpbusd_avx_epi32(c1[r], av, b1);                           \
      }                                                                           \
    }                                                                             \
  }
  for (int64_t g = 0; g < body; ++g) HBN_VNNI_GROUP(g, a_of(g), lda)
  for (int64_t u = 0; u < tgroups; ++u) HBN_VNNI_GROUP(body + u, t + u * kQKGroup, ldt)
#undef HBN_VNNI_GROUP
  if (ST) {
    const float* sc = st->scale;
    const float* bi = st->bias;
    auto out = [&](__m256i c, int h) __attribute__((always_inline)) {
      const __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(c), _mm256_loadu_ps(sc + 8 * h)),
                                     _mm256_loadu_ps(bi + 8 * h));
      // y > 0 ? y : 0 (NaN and -0 give +0, as VMAXPS with 0 second)
      return RELU ? _mm256_max_ps(v, _mm256_setzero_ps()) : v;
    };
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      _mm256_storeu_ps(y + r * ldy, out(c0[r], 0));
      _mm256_storeu_ps(y + r * ldy + 8, out(c1[r], 1));
    }
    return;
  }
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

template <int R, bool RELU>
__attribute__((noinline)) void direct_store_r(const QRuns& A, const int8_t* panel, int64_t k4, const QStore* st,
                                              float* y, int64_t ldy) {
  auto a_of = [&A](int64_t g) { return A.a + A.koff[g]; };
  tile_core<R, decltype(a_of), true, RELU>(a_of, A.lda, panel, k4, nullptr, A.t, A.ldt, A.tgroups, st, y, ldy);
}

template <bool RELU>
void direct_store_t(const QRuns& a, int rows, int np, const int8_t* panel, int64_t k4, const QStore* st, float* y,
                    int64_t ldy) {
  for (int i = 0; i < np; ++i)
    dispatch_rows<kMR>(rows, [&](auto r) {
      direct_store_r<decltype(r)::value, RELU>(a, panel + i * k4 * kQNR, k4, st + i, y + i * kQNR, ldy);
    });
}

void direct_store(const QRuns& a, int rows, int np, const int8_t* panel, int64_t k4, const QStore* st, float* y,
                  int64_t ldy) {
  (st[0].relu ? direct_store_t<true> : direct_store_t<false>)(a, rows, np, panel, k4, st, y, ldy);
}

}  // namespace

QKernel qkernel_avxvnni() {
  return {kMR, tile, nullptr, store_rows_impl, quantize_impl, store_bits_impl, direct, kMR, 1, direct_store};
}

}  // namespace qgemm
}  // namespace hbn

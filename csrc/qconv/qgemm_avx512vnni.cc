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

// Two panels (32 channels) per row: 24 accumulators, and each broadcast of a row's 4 values
// serves two VPDPBUSD (one broadcast load per instruction left the loop at ~70% of the peak).
template <int R>
void tile2_r(const uint8_t* a, int64_t lda, const int8_t* panel, int64_t k4, int32_t* acc) {
  __m512i c0[R], c1[R];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) c0[r] = c1[r] = _mm512_setzero_si512();
  const int64_t groups = k4 / kQKGroup;
  const int8_t* panel1 = panel + k4 * kQNR;
  for (int64_t g = 0; g < groups; ++g) {
    const __m512i b0 = _mm512_loadu_si512(panel + g * kQKGroup * kQNR);
    const __m512i b1 = _mm512_loadu_si512(panel1 + g * kQKGroup * kQNR);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      int32_t v;
      std::memcpy(&v, a + r * lda + g * kQKGroup, sizeof v);
      const __m512i av = _mm512_set1_epi32(v);
      HBN_DPBUSD(c0[r], av, b0);
      HBN_DPBUSD(c1[r], av, b1);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    _mm512_storeu_si512(acc + r * kQNR, c0[r]);
    _mm512_storeu_si512(acc + (kQMaxMR + r) * kQNR, c1[r]);
  }
}

void tile2(const uint8_t* a, int64_t lda, int rows, const int8_t* panel, int64_t k4, const int32_t*,
           int32_t* acc) {
  dispatch_rows<kMR>(rows, [&](auto r) { tile2_r<decltype(r)::value>(a, lda, panel, k4, acc); });
}

void tile(const uint8_t* a, int64_t lda, int rows, const int8_t* panel, int64_t k4, const int32_t*,
          int32_t* acc) {
  dispatch_rows<kMR>(rows, [&](auto r) { tile_r<decltype(r)::value>(a, lda, panel, k4, acc); });
}

// The direct conv tile (QRuns): up to 14 pixels x 32 channels (tile2_r's shape, two rows
// more), each body group's A bytes at A.koff[g] past the pixel, one flat loop over the
// receptive field (a loop per kernel row ran at half the rate: its 12 row pointers rebuilt for
// every 6 groups of a 21-value run), then the tail groups. Not inlined: inlined into the
// dispatching switch, GCC kept the accumulators on the stack (126 G/s on ResNet-18's conv1).
// 6 pixels x 4 panels (each broadcast serving 4 instructions) measured 277 G/s against 298 for
// 12 x 2. 14 rows (28 accumulators, 2 weight vectors and the broadcast: 31 of the 32 zmm, no
// spill in the K loop) split ResNet-18's 112-pixel output rows into 8 full tiles where 12 made
// 10 tiles of 11-12 rows: 0.324 -> 0.308 ms on its conv1, 2% on SqueezeNet's 109-pixel rows.
// ST: the output stage in registers (QDirectStoreFn) instead of the accumulators to acc (a
// store stage through acc and store_rows_impl took a third of ResNet-18's conv1); RELU its
// activation. The stage is store_rows_impl's operations in registers, two of them moved out of the rows: the
// accumulators start at -zc (acc - zc mod 2^32, the same int32 as the subtraction after), and
// the panels' scales and biases are loaded into registers once, after the K loop (read per row
// through st, GCC reloaded the pointers after every store, as y might alias them). Without
// both, the stage's 24 rows took a quarter of ResNet-18's conv1 (0.29 ms with the accumulators
// stored to acc, 0.39 with both in every row).
// BITS (with ST): the packed-bit stage instead (QDirectBitsFn): the same y compared with the
// thresholds as store_bits_impl does, one 16-bit mask per row and panel to bits + r * ldb + 2i.
// (Through acc and store_bits: 0.44 ms on ResNet-18's conv1; here 0.39, and 0.36 with the masks
// stored into the output words rather than merged into them by the driver.)
template <int R, int NP, bool ST = false, bool RELU = false, bool BITS = false>
__attribute__((noinline)) void direct_r(const QRuns& A, const int8_t* panel, int64_t k4, int32_t* acc,
                                        const QStore* st = nullptr, float* y = nullptr, int64_t ldy = 0,
                                        uint8_t* bits = nullptr, int64_t ldb = 0) {
  __m512i c0[R], c1[R];
  __m512i z0 = _mm512_setzero_si512(), z1 = z0;
  if (ST) {
    z0 = _mm512_sub_epi32(z0, _mm512_loadu_si512(st[0].zc));
    if (NP == 2) z1 = _mm512_sub_epi32(z1, _mm512_loadu_si512(st[1].zc));
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) c0[r] = z0, c1[r] = z1;
  const int64_t body = k4 / kQKGroup - A.tgroups;
  const int8_t* panel1 = panel + k4 * kQNR;
  // One group of every row: its 4 bytes at ag + r * ld, against group g of the panels (a
  // macro: the accumulators stay registers, which a lambda capturing them did not promise).
#define HBN_DIRECT_GROUP(g, ag, ld)                                     \
  {                                                                     \
    const __m512i b0 = _mm512_loadu_si512(panel + (g) * kQKGroup * kQNR); \
    __m512i b1;                                                         \
    if (NP == 2) b1 = _mm512_loadu_si512(panel1 + (g) * kQKGroup * kQNR); \
    _Pragma("GCC unroll 16") for (int r = 0; r < R; ++r) {              \
      int32_t v;                                                        \
      std::memcpy(&v, (ag) + r * (ld), sizeof v);                       \
      const __m512i av = _mm512_set1_epi32(v);                          \
      HBN_DPBUSD(c0[r], av, b0);                                        \
      if (NP == 2) HBN_DPBUSD(c1[r], av, b1);                           \
    }                                                                   \
  }
  const uint8_t* a = A.a;
  const int64_t lda = A.lda;
  for (int64_t g = 0; g < body; ++g) HBN_DIRECT_GROUP(g, a + A.koff[g], lda)
  // The tail: the rest of each kernel row, contiguous per pixel (QRuns).
  const uint8_t* t = A.t;
  const int64_t ldt = A.ldt;
  for (int64_t u = 0; u < A.tgroups; ++u) HBN_DIRECT_GROUP(body + u, t + u * kQKGroup, ldt)
#undef HBN_DIRECT_GROUP
  if (ST && BITS) {
    // One panel at a time: its scale, bias and thresholds in registers beside the accumulators.
    // The flipped channels' `y > thr` is compared as `-y < -thr` (negation is exact, and an
    // ordered compare stays false for NaN), so every channel takes one LT compare straight
    // into the mask: bits_row's two compares and the select by the flips cost 0.05 ms more
    // on ResNet-18's conv1.
    auto panel_bits = [&](const __m512i* c, const QStore& q, uint8_t* out) __attribute__((always_inline)) {
      const __m512i sgn = _mm512_maskz_set1_epi32(static_cast<__mmask16>(q.flip), INT32_MIN);
      const __m512 s = _mm512_loadu_ps(q.scale), b = _mm512_loadu_ps(q.bias);
      const __m512 t = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_loadu_si512(q.thr), sgn));
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_cvtepi32_ps(0xffff, c[r]), s), b);
        // y > 0 ? y : 0 (NaN and -0 give +0, as VMAXPS with 0 second)
        if (RELU) v = _mm512_max_ps(v, _mm512_setzero_ps());
        v = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), sgn));
        const uint16_t m = _mm512_cmp_ps_mask(v, t, _CMP_LT_OQ);
        std::memcpy(out + r * ldb, &m, sizeof m);
      }
    };
    panel_bits(c0, st[0], bits);
    if (NP == 2) panel_bits(c1, st[1], bits + sizeof(uint16_t));
    return;
  }
  if (ST) {
    const __m512 s0 = _mm512_loadu_ps(st[0].scale), b0 = _mm512_loadu_ps(st[0].bias);
    __m512 s1 = s0, b1 = b0;
    if (NP == 2) s1 = _mm512_loadu_ps(st[1].scale), b1 = _mm512_loadu_ps(st[1].bias);
    // y > 0 ? y : 0 (NaN and -0 give +0, as VMAXPS with 0 second)
    auto out = [&](__m512i c, __m512 s, __m512 b) __attribute__((always_inline)) {
      const __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_cvtepi32_ps(0xffff, c), s), b);
      return RELU ? _mm512_max_ps(v, _mm512_setzero_ps()) : v;
    };
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      _mm512_storeu_ps(y + r * ldy, out(c0[r], s0, b0));
      if (NP == 2) _mm512_storeu_ps(y + r * ldy + kQNR, out(c1[r], s1, b1));
    }
    return;
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    _mm512_storeu_si512(acc + r * kQNR, c0[r]);
    if (NP == 2) _mm512_storeu_si512(acc + (kQMaxMR + r) * kQNR, c1[r]);
  }
}

constexpr int kDirectMR = 14, kDirectNP = 2;

void direct(const QRuns& a, int rows, int np, const int8_t* panel, int64_t k4, const int32_t*, int32_t* acc) {
  if (np == 2)
    dispatch_rows<kDirectMR>(rows, [&](auto r) { direct_r<decltype(r)::value, 2>(a, panel, k4, acc); });
  else
    dispatch_rows<kDirectMR>(rows, [&](auto r) { direct_r<decltype(r)::value, 1>(a, panel, k4, acc); });
}

template <bool RELU>
void direct_store_t(const QRuns& a, int rows, int np, const int8_t* panel, int64_t k4, const QStore* st, float* y,
                    int64_t ldy) {
  if (np == 2)
    dispatch_rows<kDirectMR>(rows, [&](auto r) {
      direct_r<decltype(r)::value, 2, true, RELU>(a, panel, k4, nullptr, st, y, ldy);
    });
  else
    dispatch_rows<kDirectMR>(rows, [&](auto r) {
      direct_r<decltype(r)::value, 1, true, RELU>(a, panel, k4, nullptr, st, y, ldy);
    });
}

// The panels of one call share the transform's activation (one layer's).
void direct_store(const QRuns& a, int rows, int np, const int8_t* panel, int64_t k4, const QStore* st, float* y,
                  int64_t ldy) {
  (st[0].relu ? direct_store_t<true> : direct_store_t<false>)(a, rows, np, panel, k4, st, y, ldy);
}

template <bool RELU>
void direct_bits_t(const QRuns& a, int rows, int np, const int8_t* panel, int64_t k4, const QStore* st,
                   uint8_t* bits, int64_t ldb) {
  if (np == 2)
    dispatch_rows<kDirectMR>(rows, [&](auto r) {
      direct_r<decltype(r)::value, 2, true, RELU, true>(a, panel, k4, nullptr, st, nullptr, 0, bits, ldb);
    });
  else
    dispatch_rows<kDirectMR>(rows, [&](auto r) {
      direct_r<decltype(r)::value, 1, true, RELU, true>(a, panel, k4, nullptr, st, nullptr, 0, bits, ldb);
    });
}

void direct_bits(const QRuns& a, int rows, int np, const int8_t* panel, int64_t k4, const QStore* st,
                 uint8_t* bits, int64_t ldb) {
  (st[0].relu ? direct_bits_t<true> : direct_bits_t<false>)(a, rows, np, panel, k4, st, bits, ldb);
}

}  // namespace

QKernel qkernel_avx512vnni() {
  return {kMR,    tile,      tile2,     store_rows_impl, quantize_impl, store_bits_impl,
          direct, kDirectMR, kDirectNP, direct_store, direct_bits};
}

}  // namespace qgemm
}  // namespace hbn

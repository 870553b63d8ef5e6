// Row kernels of the fused ops (max_pool_fused, add_fused) written once over a vector-traits
// class V that each ISA's translation unit defines (ops_avx2.cc, ops_avx512.cc):
//   V::L                         lanes (divides 64)
//   V::kRegs                     vector registers of L lanes the ISA has (register budget)
//   V::reg load(p, n)            n <= L valid lanes (the rest unread, zero)
//   void store(p, r, n)          n <= L lanes written
//   reg max(a, b)                (b < a) ? a : b per lane, i.e. the reference's `o < s ? s : o`
//   reg add(a, b), relu(a)       relu(y) = y > 0 ? y : +0 (NaN -> 0, as the reference)
//   uint32_t bits(y, sign, thr)  lane i: (y ^ sign[i]) < thr[i] (see PackSink)
// Every lane's value is the scalar definition's (max and add are exact, the comparison is the
// pack rule), so each path equals the reference bit for bit.
// Internal linkage on purpose: each translation unit keeps its own ISA's instantiation.
#pragma once
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "hbn/dispatch_rows.h"
#include "runtime/ops.h"

// Full unrolling of the fixed-shape pool loops, so carried columns stay in registers.
#if defined(__GNUC__) && !defined(__clang__)
#define HBN_UNROLL _Pragma("GCC unroll 64")
#elif defined(__clang__)
#define HBN_UNROLL _Pragma("unroll")
#else
#define HBN_UNROLL
#endif

namespace hbn {
namespace {

// Collects the L-bit chunks of one row into words for NS sinks (a compile-time count, so the
// partial words live in registers).
template <int L, int NS>
struct RowPacker {
  const PackSink* s;
  int64_t words;
  word_t cur[NS > 0 ? NS : 1] = {};

  template <typename V>
  inline void put(const typename V::reg& y, int64_t ch, int64_t n, int64_t c, int64_t row) {
    if constexpr (NS > 0) {
      const int64_t bit = ch % kWordBits;
      const uint32_t keep = n >= 32 ? ~0u : ((1u << n) - 1u);
      const bool last = bit + L == kWordBits || ch + L >= c;
      for (int k = 0; k < NS; ++k) {
        const word_t b = static_cast<word_t>(V::bits(y, s[k].sign + ch, s[k].thr_x + ch) & keep);
        cur[k] = bit == 0 ? b : (cur[k] | (b << bit));
        if (last) s[k].out[row * words + ch / kWordBits] = cur[k];
      }
    }
  }
};

// Max-pool rows. Each pooled value is the reference's fold (pool_kernels.h): the window's
// elements in row-major order from the first, m = m < v ? v : m, so a NaN first element stays,
// later NaNs are skipped and among equal values (-0 / +0) the first one wins; V::max(v, m) is
// that step per lane. Channels go in groups of one word (64): the sinks' bits of a group are a
// whole word, finished inside the group. Measured on ResNet-18's 3x3/2 pool (112x112x64, AVX-512)
// the old pixel-at-a-time loop with runtime window loops spent ~19 ns per pixel for 36 loads: the
// loads, not the max chains, bound it (one 512-bit load per cycle here), and a 3x3/2 window
// reloads the column it shares with its left neighbour. So the interior pixels of a row run
// with the window shape as template parameters (every loop unrolled, no per-element branches)
// and, where the registers allow, the overlapping columns carried from one pixel to the next:
// 6 loads instead of 9 per pixel and chunk. The border pixels (clipped windows) and the shapes
// without an instantiation take the runtime loops.

// One pooled pixel, channels [cg, cg + gc) (gc <= 64), runtime window.
template <typename V, int NS>
inline void pool_px_direct(const float* __restrict img, int64_t w, int64_t c, int64_t y0, int64_t y1,
                           int64_t x0, int64_t x1, int64_t cg, int64_t gc, int64_t row,
                           float* __restrict out, int64_t os, RowPacker<V::L, NS>& pk) {
  for (int64_t ch = cg; ch < cg + gc; ch += V::L) {
    const int64_t n = std::min<int64_t>(V::L, cg + gc - ch);
    typename V::reg m = V::load(img + (y0 * w + x0) * c + ch, n);
    for (int64_t y = y0; y < y1; ++y) {
      const float* src = img + (y * w + x0) * c + ch;
      for (int64_t x = x0; x < x1; ++x, src += c) m = V::max(V::load(src, n), m);
    }
    if (out) V::store(out + row * os + ch, m, n);
    pk.template put<V>(m, ch, n, c, row);
  }
}

// Interior pixels [oa, ob) of one row (every window KW wide and NY rows from y0, unclipped in
// x), one full group of NC = 64 / L registers. CARRY keeps the KW - SW columns a pixel shares
// with the next in registers instead of reloading them.
template <typename V, int NS, int KW, int SW, int NY, bool CARRY>
inline void pool_run_fixed(const float* __restrict img, int64_t w, int64_t c, int64_t y0, int64_t pw,
                           int64_t oa, int64_t ob, int64_t r, int64_t out_w, int64_t cg,
                           float* __restrict out, int64_t os, RowPacker<V::L, NS>& pk) {
  constexpr int NC = kWordBits / V::L;
  constexpr int KC = CARRY && KW > SW ? KW - SW : 0;
  using reg = typename V::reg;
  reg carry[KC > 0 ? KC : 1][NY][NC];
  const float* base = img + y0 * w * c + cg;
  if constexpr (KC > 0) {
    const float* s0 = base + (oa * SW - pw) * c;
    HBN_UNROLL
    for (int t = 0; t < KC; ++t)
      HBN_UNROLL
      for (int j = 0; j < NY; ++j)
        HBN_UNROLL
        for (int u = 0; u < NC; ++u) carry[t][j][u] = V::load(s0 + (j * w + t) * c + u * V::L, V::L);
  }
  for (int64_t ox = oa; ox < ob; ++ox) {
    const float* s0 = base + (ox * SW - pw) * c;
    const int64_t row = r * out_w + ox;
    reg m[NC];
    HBN_UNROLL
    for (int u = 0; u < NC; ++u) m[u] = KC > 0 ? carry[0][0][u] : V::load(s0 + u * V::L, V::L);
    HBN_UNROLL
    for (int j = 0; j < NY; ++j)
      HBN_UNROLL
      for (int t = 0; t < KW; ++t)
        HBN_UNROLL
        for (int u = 0; u < NC; ++u) {
          const reg v = t < KC ? carry[t < KC ? t : 0][j][u] : V::load(s0 + (j * w + t) * c + u * V::L, V::L);
          if (j > 0 || t > 0) m[u] = V::max(v, m[u]);  // m is the first element: m < m never holds
          if constexpr (KC > 0)
            if (t >= SW) carry[t >= SW ? t - SW : 0][j][u] = v;  // column x0 + t is the next x0 + t - SW
        }
    if (out) {
      HBN_UNROLL
      for (int u = 0; u < NC; ++u) V::store(out + row * os + cg + u * V::L, m[u], V::L);
    }
    // A full group is one word per sink: its NC masks at fixed shifts (RowPacker::put's rule
    // without the per-chunk bookkeeping).
    if constexpr (NS > 0) {
      HBN_UNROLL
      for (int k = 0; k < NS; ++k) {
        word_t wd = 0;
        HBN_UNROLL
        for (int u = 0; u < NC; ++u)
          wd |= static_cast<word_t>(V::bits(m[u], pk.s[k].sign + cg + u * V::L, pk.s[k].thr_x + cg + u * V::L))
                << (u * V::L);
        pk.s[k].out[row * pk.words + cg / kWordBits] = wd;
      }
    }
  }
}

// The fixed-window run for (kw, sw, rows) when instantiated: 3x3/2 (ResNet, AlexNet-style
// 3x3/2 pools), 2x2/2, 3x3/1. False when the shape has no instantiation.
template <typename V, int NS, int KW, int SW>
inline bool pool_run_rows(int64_t ny, const float* img, int64_t w, int64_t c, int64_t y0, int64_t pw,
                          int64_t oa, int64_t ob, int64_t r, int64_t out_w, int64_t cg, float* out,
                          int64_t os, RowPacker<V::L, NS>& pk) {
  constexpr int NC = kWordBits / V::L;
  // carried columns + accumulators + a loaded value within the ISA's register file
  auto go = [&](auto nyc) {
    constexpr int NY = decltype(nyc)::value;
    constexpr bool kCarry = (KW > SW ? KW - SW : 0) * NY * NC + 2 * NC <= V::kRegs;
    pool_run_fixed<V, NS, KW, SW, NY, kCarry>(img, w, c, y0, pw, oa, ob, r, out_w, cg, out, os, pk);
    return true;
  };
  switch (ny) {
    case 1: return go(std::integral_constant<int, 1>{});
    case 2: return go(std::integral_constant<int, 2>{});
    case 3: return go(std::integral_constant<int, 3>{});
    default: return false;
  }
}

// out: pooled pixel `row` at out + row * os (os = c, or a concat's width for max_pool_into).
template <typename V, int NS>
void max_pool_fused_rows_n(const float* __restrict in, int64_t h, int64_t w, int64_t c,
                           const PoolParams& p, float* __restrict out, int64_t os, const PackSink* s,
                           int64_t b, int64_t e) {
  RowPacker<V::L, NS> pk{s, words_for(c)};
  // Interior output columns [oi0, oi1): windows inside the image in x.
  const int64_t oi0 = std::min<int64_t>(p.out_w, (p.pw + p.sw - 1) / p.sw);
  const int64_t oi1 = w + p.pw >= p.kw ? std::max<int64_t>(oi0, std::min<int64_t>(p.out_w, (w + p.pw - p.kw) / p.sw + 1)) : oi0;
  for (int64_t r = b; r < e; ++r) {
    const int64_t ni = r / p.out_h, oy = r % p.out_h;
    // Plain variables, not a structured binding: the lambda below captures them, which C++17
    // allows only for variables (clang rejects a captured binding; GCC accepts it).
    const std::pair<int64_t, int64_t> yr = p.rows(oy, h);
    const int64_t y0 = yr.first, y1 = yr.second;
    const float* img = in + ni * h * w * c;
    for (int64_t cg = 0; cg < c; cg += kWordBits) {
      const int64_t gc = std::min<int64_t>(kWordBits, c - cg);
      int64_t ox = 0;
      if (gc == kWordBits && oi1 > oi0) {
        const int64_t ny = y1 - y0;
        auto run = [&](auto kwc, auto swc) {
          for (; ox < oi0; ++ox) {
            const auto [x0, x1] = p.cols(ox, w);
            pool_px_direct<V, NS>(img, w, c, y0, y1, x0, x1, cg, gc, r * p.out_w + ox, out, os, pk);
          }
          if (pool_run_rows<V, NS, decltype(kwc)::value, decltype(swc)::value>(
                  ny, img, w, c, y0, p.pw, oi0, oi1, r, p.out_w, cg, out, os, pk))
            ox = oi1;
        };
        using I2 = std::integral_constant<int, 2>;
        using I3 = std::integral_constant<int, 3>;
        using I1 = std::integral_constant<int, 1>;
        if (p.kw == 3 && p.sw == 2) run(I3{}, I2{});
        else if (p.kw == 2 && p.sw == 2) run(I2{}, I2{});
        else if (p.kw == 3 && p.sw == 1) run(I3{}, I1{});
      }
      for (; ox < p.out_w; ++ox) {
        const auto [x0, x1] = p.cols(ox, w);
        pool_px_direct<V, NS>(img, w, c, y0, y1, x0, x1, cg, gc, r * p.out_w + ox, out, os, pk);
      }
    }
  }
}

template <typename V, int NS>
void add_fused_rows_n(const float* __restrict a, const float* __restrict b, int64_t c, bool relu,
                      float* __restrict out, const PackSink* s, int64_t r0, int64_t r1) {
  RowPacker<V::L, NS> pk{s, words_for(c)};
  for (int64_t r = r0; r < r1; ++r) {
    const float* ar = a + r * c;
    const float* br = b + r * c;
    for (int64_t ch = 0; ch < c; ch += V::L) {
      const int64_t n = std::min<int64_t>(V::L, c - ch);
      typename V::reg y = V::add(V::load(ar + ch, n), V::load(br + ch, n));
      if (relu) y = V::relu(y);
      if (out) V::store(out + r * c + ch, y, n);
      pk.template put<V>(y, ch, n, c, r);
    }
  }
}

// One instantiation per sink count 0 .. kMaxPackSinks.
template <typename V>
void max_pool_fused_rows(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p,
                         float* out, const PackSink* s, int ns, int64_t b, int64_t e) {
  dispatch_rows<kMaxPackSinks, 1, 0>(ns, [&](auto k) {
    max_pool_fused_rows_n<V, decltype(k)::value>(in, h, w, c, p, out, c, s, b, e);
  });
}

template <typename V>
void max_pool_rows_to(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p, float* out,
                      int64_t os, int64_t b, int64_t e) {
  max_pool_fused_rows_n<V, 0>(in, h, w, c, p, out, os, nullptr, b, e);
}

template <typename V>
void add_fused_rows(const float* a, const float* b, int64_t c, bool relu, float* out,
                    const PackSink* s, int ns, int64_t r0, int64_t r1) {
  dispatch_rows<kMaxPackSinks, 1, 0>(ns, [&](auto k) {
    add_fused_rows_n<V, decltype(k)::value>(a, b, c, relu, out, s, r0, r1);
  });
}

}  // namespace
}  // namespace hbn

// Row kernels of the fused ops (max_pool_fused, add_fused) written once over a vector-traits
// class V that each ISA's translation unit defines (ops_avx2.cc, ops_avx512.cc):
//   V::L                         lanes (divides 64)
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

#include "hbn/dispatch_rows.h"
#include "runtime/ops.h"

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

// out: pooled pixel `row` at out + row * os (os = c, or a concat's width for max_pool_into).
template <typename V, int NS>
void max_pool_fused_rows_n(const float* __restrict in, int64_t h, int64_t w, int64_t c,
                           const PoolParams& p, float* __restrict out, int64_t os, const PackSink* s,
                           int64_t b, int64_t e) {
  RowPacker<V::L, NS> pk{s, words_for(c)};
  for (int64_t r = b; r < e; ++r) {
    const int64_t ni = r / p.out_h, oy = r % p.out_h;
    const auto [y0, y1] = p.rows(oy, h);
    const float* img = in + ni * h * w * c;
    for (int64_t ox = 0; ox < p.out_w; ++ox) {
      const auto [x0, x1] = p.cols(ox, w);
      const int64_t row = r * p.out_w + ox;
      int64_t ch = 0;
      // Four full chunks at a time: four independent max chains (one chain waits on the max
      // latency at every window element); each channel's elements in the same order.
      constexpr int kU = 4;
      for (; ch + kU * V::L <= c; ch += kU * V::L) {
        typename V::reg m[kU];
        for (int u = 0; u < kU; ++u) m[u] = V::load(img + (y0 * w + x0) * c + ch + u * V::L, V::L);
        for (int64_t y = y0; y < y1; ++y) {
          const float* src = img + (y * w + x0) * c + ch;
          for (int64_t x = x0; x < x1; ++x, src += c)
            for (int u = 0; u < kU; ++u) m[u] = V::max(V::load(src + u * V::L, V::L), m[u]);
        }
        for (int u = 0; u < kU; ++u) {
          if (out) V::store(out + row * os + ch + u * V::L, m[u], V::L);
          pk.template put<V>(m[u], ch + u * V::L, V::L, c, row);
        }
      }
      for (; ch < c; ch += V::L) {
        const int64_t n = std::min<int64_t>(V::L, c - ch);
        typename V::reg m = V::load(img + (y0 * w + x0) * c + ch, n);
        for (int64_t y = y0; y < y1; ++y) {
          const float* src = img + (y * w + x0) * c + ch;
          for (int64_t x = x0; x < x1; ++x, src += c) m = V::max(V::load(src, n), m);
        }
        if (out) V::store(out + row * os + ch, m, n);
        pk.template put<V>(m, ch, n, c, row);
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

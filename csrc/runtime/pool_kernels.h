// Pooling row kernels shared by ops.cc (baseline ISA) and ops_avx2.cc / ops_avx512.cc: the same
// source compiled with each ISA's flags, so the vector paths are the scalar definition
// vectorised over channels (NHWC keeps channels contiguous) and give identical results (max is
// exact; each channel's sum is taken in the same window order on every path).
// Internal linkage on purpose: each translation unit must keep its own ISA's instantiation.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "runtime/ops.h"

namespace hbn {
namespace {

// Output rows [b, e) of a max-pool (row r = image r / out_h, output y r % out_h); pooled pixel
// q at out + q * os (os = c, or a concat's width when a pool reads a concat's operands).
inline void max_pool_rows_to_impl(const float* __restrict in, int64_t h, int64_t w, int64_t c,
                                  const PoolParams& p, float* __restrict out, int64_t os, int64_t b, int64_t e) {
  for (int64_t r = b; r < e; ++r) {
    const int64_t ni = r / p.out_h, oy = r % p.out_h;
    const auto [y0, y1] = p.rows(oy, h);
    for (int64_t ox = 0; ox < p.out_w; ++ox) {
      const auto [x0, x1] = p.cols(ox, w);
      float* __restrict o = out + (r * p.out_w + ox) * os;
      // windows are never empty (PyTorch's padding and ceil rules guarantee a valid start),
      // so the first element seeds the max: no -inf fill pass
      std::memcpy(o, in + ((ni * h + y0) * w + x0) * c, sizeof(float) * c);
      for (int64_t y = y0; y < y1; ++y)
        for (int64_t x = x0; x < x1; ++x) {
          const float* __restrict src = in + ((ni * h + y) * w + x) * c;
          for (int64_t ch = 0; ch < c; ++ch) o[ch] = o[ch] < src[ch] ? src[ch] : o[ch];
        }
    }
  }
}

inline void max_pool_rows_impl(const float* __restrict in, int64_t h, int64_t w, int64_t c,
                               const PoolParams& p, float* __restrict out, int64_t b, int64_t e) {
  max_pool_rows_to_impl(in, h, w, c, p, out, c, b, e);
}

inline void avg_pool_rows_impl(const float* __restrict in, int64_t h, int64_t w, int64_t c,
                               const PoolParams& p, float* __restrict out, int64_t b, int64_t e) {
  for (int64_t r = b; r < e; ++r) {
    const int64_t ni = r / p.out_h, oy = r % p.out_h;
    int64_t y0 = oy * p.sh - p.ph, y1 = std::min<int64_t>(y0 + p.kh, h + p.ph);
    const int64_t pool_h = y1 - y0;
    y0 = std::max<int64_t>(y0, 0);
    y1 = std::min<int64_t>(y1, h);
    for (int64_t ox = 0; ox < p.out_w; ++ox) {
      int64_t x0 = ox * p.sw - p.pw, x1 = std::min<int64_t>(x0 + p.kw, w + p.pw);
      const int64_t pool_w = x1 - x0;
      x0 = std::max<int64_t>(x0, 0);
      x1 = std::min<int64_t>(x1, w);
      const int64_t div = p.count_include_pad ? pool_h * pool_w : (y1 - y0) * (x1 - x0);
      float* __restrict o = out + (r * p.out_w + ox) * c;
      for (int64_t ch = 0; ch < c; ++ch) o[ch] = 0.0f;
      for (int64_t y = y0; y < y1; ++y)
        for (int64_t x = x0; x < x1; ++x) {
          const float* __restrict src = in + ((ni * h + y) * w + x) * c;
          for (int64_t ch = 0; ch < c; ++ch) o[ch] += src[ch];
        }
      const float inv = div > 0 ? 1.0f / static_cast<float>(div) : 0.0f;
      for (int64_t ch = 0; ch < c; ++ch) o[ch] *= inv;
    }
  }
}

// The horizontal step of max_pool_bits_rows_impl: output pixels [ox0, ox1) of one row from the
// column buffer (nk words per column from input column xa). NK > 0 fixes nk at compile time
// (the common word counts, fully unrolled), NK = 0 takes it at run time.
template <int NK>
inline void pool_bits_cols(const word_t* __restrict col, const word_t* __restrict nm, int64_t nk_rt, int64_t xa,
                           int64_t w, int64_t words, const PoolParams& p, int64_t ox0, int64_t ox1,
                           word_t* __restrict out_row) {
  const int64_t nk = NK > 0 ? NK : nk_rt;
  for (int64_t ox = ox0; ox < ox1; ++ox) {
    const auto [x0, x1] = p.cols(ox, w);
    word_t* __restrict o = out_row + ox * words;
    const word_t* __restrict c0 = col + (x0 - xa) * nk;
    word_t acc[NK > 0 ? NK : 1];
    if (NK > 0) {
      for (int64_t k = 0; k < nk; ++k) acc[k] = c0[k];
      for (int64_t x = x0 + 1; x < x1; ++x)
        for (int64_t k = 0; k < nk; ++k) acc[k] |= c0[(x - x0) * nk + k];
      for (int64_t k = 0; k < nk; ++k) o[k] = acc[k] ^ nm[k];
    } else {
      for (int64_t k = 0; k < nk; ++k) o[k] = c0[k];
      for (int64_t x = x0 + 1; x < x1; ++x)
        for (int64_t k = 0; k < nk; ++k) o[k] |= c0[(x - x0) * nk + k];
      for (int64_t k = 0; k < nk; ++k) o[k] ^= nm[k];
    }
  }
}

// Output rows [b, e) of a max-pool in the bit domain (max_pool_bits, ops.h): per channel the
// AND of the window's bits, or the OR where or_mask has the channel's bit (bit(max) of a
// monotone comparison). Both as one OR: AND(v) = ~OR(~v), so every word is XOR-ed with
// nm = ~or_mask on the way in and out. Separable: the window's rows are OR-ed into one column
// buffer per chunk of output columns (a contiguous sweep over rows of w * words words, the
// part the compiler vectorises), then each output pixel ORs its kw columns of that buffer.
// Bit for bit the direct definition, including the pad bits of a partial last word.
inline void max_pool_bits_rows_impl(const word_t* __restrict in, int64_t h, int64_t w, int64_t words,
                                    const PoolParams& p, const word_t* __restrict or_mask,
                                    word_t* __restrict out, int64_t b, int64_t e) {
  constexpr int64_t kBuf = 2048;  // words of OR-ed columns (16 KB of stack)
  word_t col[kBuf], nm[kBuf];
  // Word blocks of kb words: one output pixel's (clipped) window columns always fit.
  const int64_t win_cols = std::max<int64_t>(1, std::min<int64_t>(p.kw, w));
  const int64_t kb = std::min<int64_t>(words, std::max<int64_t>(1, kBuf / win_cols));
  const int64_t cap_cols = kBuf / kb;
  for (int64_t k0 = 0; k0 < words; k0 += kb) {
    const int64_t nk = std::min(kb, words - k0);
    const int64_t fill = std::min(cap_cols, w) * nk;
    for (int64_t i = 0; i < fill; ++i) nm[i] = ~or_mask[k0 + i % nk];
    for (int64_t r = b; r < e; ++r) {
      const int64_t ni = r / p.out_h, oy = r % p.out_h;
      const auto [y0, y1] = p.rows(oy, h);
      for (int64_t ox0 = 0; ox0 < p.out_w;) {
        const int64_t xa = p.cols(ox0, w).first;
        int64_t ox1 = ox0 + 1;
        while (ox1 < p.out_w && p.cols(ox1, w).second - xa <= cap_cols) ++ox1;
        const int64_t xb = p.cols(ox1 - 1, w).second;
        const int64_t len = (xb - xa) * nk;
        for (int64_t y = y0; y < y1; ++y) {
          const word_t* __restrict src = in + ((ni * h + y) * w + xa) * words + k0;
          if (nk == words) {  // the columns are one contiguous run
            if (y == y0)
              for (int64_t i = 0; i < len; ++i) col[i] = src[i] ^ nm[i];
            else
              for (int64_t i = 0; i < len; ++i) col[i] |= src[i] ^ nm[i];
          } else {
            for (int64_t x = 0; x < xb - xa; ++x)
              for (int64_t k = 0; k < nk; ++k) {
                const word_t v = src[x * words + k] ^ nm[k];
                col[x * nk + k] = y == y0 ? v : col[x * nk + k] | v;
              }
          }
        }
        word_t* out_row = out + r * p.out_w * words + k0;
        switch (nk) {
          case 1: pool_bits_cols<1>(col, nm, nk, xa, w, words, p, ox0, ox1, out_row); break;
          case 2: pool_bits_cols<2>(col, nm, nk, xa, w, words, p, ox0, ox1, out_row); break;
          case 4: pool_bits_cols<4>(col, nm, nk, xa, w, words, p, ox0, ox1, out_row); break;
          case 8: pool_bits_cols<8>(col, nm, nk, xa, w, words, p, ox0, ox1, out_row); break;
          default: pool_bits_cols<0>(col, nm, nk, xa, w, words, p, ox0, ox1, out_row);
        }
        ox0 = ox1;
      }
    }
  }
}

}  // namespace
}  // namespace hbn

#include "runtime/ops.h"

#include "bitpack/bitpack.h"
#include "hbn/isa.h"
#include "runtime/pool_kernels.h"
#include "runtime/transpose.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace hbn {
namespace {

// Rows below this per chunk are not worth waking another thread for.
constexpr int64_t kElemGrain = 1 << 14;

int64_t row_grain(int64_t row_elems) { return std::max<int64_t>(1, kElemGrain / std::max<int64_t>(1, row_elems)); }

// parallel_for through a one-pointer trampoline: the std::function then fits its small-buffer
// storage, so running an op never touches the heap however much the body captures.
template <typename F>
void pfor(ThreadPool& pool, int64_t n, const F& body, int64_t grain) {
  pool.parallel_for(n, [&body](int64_t b, int64_t e, int t) { body(b, e, t); }, grain);
}

}  // namespace

// Pixels per parallel chunk of a layout conversion: a tile of kTile pixels x all channels is
// transposed at once, so each thread streams whole cache lines in and out.
constexpr int64_t kTile = 64;

void nchw_to_nhwc(const float* in, int64_t n, int64_t c, int64_t h, int64_t w,
                  const int64_t s[4], float* out, ThreadPool& pool) {
  const int64_t hw = h * w;
  if (s[3] == 1 && s[2] == w) {
    // Each channel plane is contiguous (the usual C-contiguous NCHW, batch and channel
    // strides free): the conversion is a [C][HW] -> [HW][C] transpose per image.
    const int64_t tiles = (hw + kTile - 1) / kTile;
    pfor(pool, n * tiles, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t ni = t / tiles, p0 = (t % tiles) * kTile, p1 = std::min(hw, p0 + kTile);
        transpose_block(in + ni * s[0] + p0, c, p1 - p0, s[1], out + (ni * hw + p0) * c, c);
      }
    }, row_grain(kTile * c));
    return;
  }
  pfor(pool, n * h, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t ni = r / h, y = r % h;
      float* o = out + r * w * c;
      const float* base = in + ni * s[0] + y * s[2];
      for (int64_t x = 0; x < w; ++x)
        for (int64_t ch = 0; ch < c; ++ch) o[x * c + ch] = base[ch * s[1] + x * s[3]];
    }
  }, row_grain(w * c));
}

void nhwc_to_nchw(const float* in, int64_t n, int64_t c, int64_t h, int64_t w, float* out,
                  ThreadPool& pool) {
  // Per image a [HW][C] -> [C][HW] transpose, split into tiles of kTile pixels.
  const int64_t hw = h * w, tiles = (hw + kTile - 1) / kTile;
  pfor(pool, n * tiles, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t ni = t / tiles, p0 = (t % tiles) * kTile, p1 = std::min(hw, p0 + kTile);
      transpose_block(in + (ni * hw + p0) * c, p1 - p0, c, c, out + ni * c * hw + p0, hw);
    }
  }, row_grain(kTile * c));
}

void flatten_chw(const float* in, int64_t n, int64_t c, int64_t h, int64_t w, float* out,
                 ThreadPool& pool) {
  nhwc_to_nchw(in, n, c, h, w, out, pool);  // NCHW contiguous is exactly [N, C*H*W] in torch order
}

void relu(const float* in, int64_t count, float* out, ThreadPool& pool) {
  pfor(pool, count, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
  }, kElemGrain);
}

void add(const float* a, const float* b_, int64_t count, bool relu_after, float* out,
         ThreadPool& pool) {
  pfor(pool, count, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      float y = a[i] + b_[i];
      out[i] = (relu_after && !(y > 0.0f)) ? 0.0f : y;
    }
  }, kElemGrain);
}

void channel_affine(const float* in, int64_t rows, int64_t c, const float* scale,
                    const float* shift, bool relu_after, float* out, ThreadPool& pool) {
  pfor(pool, rows, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r)
      for (int64_t ch = 0; ch < c; ++ch) {
        float y = in[r * c + ch] * scale[ch] + shift[ch];
        out[r * c + ch] = (relu_after && !(y > 0.0f)) ? 0.0f : y;
      }
  }, row_grain(c));
}

void copy_channels(const float* in, int64_t rows, int64_t c, int64_t out_c, int64_t c_offset,
                   float* out, ThreadPool& pool) {
  pfor(pool, rows, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r)
      std::memcpy(out + r * out_c + c_offset, in + r * c, sizeof(float) * c);
  }, row_grain(c));
}

void copy_words(const word_t* in, int64_t rows, int64_t words, int64_t out_words,
                int64_t w_offset, word_t* out, ThreadPool& pool) {
  pfor(pool, rows, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r)
      std::memcpy(out + r * out_words + w_offset, in + r * words, sizeof(word_t) * words);
  }, row_grain(words * 8));
}

void softmax_rows(const float* in, int64_t rows, int64_t c, float* out, ThreadPool& pool) {
  pfor(pool, rows, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const float* x = in + r * c;
      float* y = out + r * c;
      float m = x[0];
      for (int64_t i = 1; i < c; ++i) m = std::max(m, x[i]);
      double sum = 0.0;
      for (int64_t i = 0; i < c; ++i) {
        y[i] = std::exp(x[i] - m);
        sum += y[i];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t i = 0; i < c; ++i) y[i] *= inv;
    }
  }, row_grain(c));
}

void lrn(const float* in, int64_t rows, int64_t c, int size, double alpha, double beta, double k,
         float* out, ThreadPool& pool) {
  const int64_t before = size / 2, after = (size - 1) / 2;
  pfor(pool, rows, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const float* x = in + r * c;
      float* y = out + r * c;
      for (int64_t ch = 0; ch < c; ++ch) {
        double sq = 0.0;
        const int64_t lo = std::max<int64_t>(0, ch - before), hi = std::min<int64_t>(c - 1, ch + after);
        for (int64_t j = lo; j <= hi; ++j) sq += double(x[j]) * x[j];
        const double div = std::pow(k + alpha * sq / size, beta);
        y[ch] = static_cast<float>(x[ch] / div);
      }
    }
  }, row_grain(c * size));
}

// Each ISA's build of the row kernels in pool_kernels.h; the baseline build is the reference.
#if defined(__x86_64__) || defined(_M_X64)
void max_pool_rows_avx2(const float*, int64_t, int64_t, int64_t, const PoolParams&, float*, int64_t, int64_t);
void max_pool_rows_avx512(const float*, int64_t, int64_t, int64_t, const PoolParams&, float*, int64_t, int64_t);
void avg_pool_rows_avx2(const float*, int64_t, int64_t, int64_t, const PoolParams&, float*, int64_t, int64_t);
void avg_pool_rows_avx512(const float*, int64_t, int64_t, int64_t, const PoolParams&, float*, int64_t, int64_t);
#endif

namespace {

using PoolRows = void (*)(const float*, int64_t, int64_t, int64_t, const PoolParams&, float*, int64_t, int64_t);

PoolRows pool_rows(bool is_max) {
#if defined(__x86_64__) || defined(_M_X64)
  switch (active_isa()) {
    case Isa::avx512: return is_max ? max_pool_rows_avx512 : avg_pool_rows_avx512;
    case Isa::avx2: return is_max ? max_pool_rows_avx2 : avg_pool_rows_avx2;
    default: break;
  }
#endif
  return is_max ? PoolRows{max_pool_rows_impl} : PoolRows{avg_pool_rows_impl};
}

// One task covers whole output rows; rows are grouped so a task reads at least ~kElemGrain
// input elements (small late layers would otherwise pay a wake-up per row).
void pool_dispatch(bool is_max, const float* in, int64_t n, int64_t h, int64_t w, int64_t c,
                   const PoolParams& p, float* out, ThreadPool& pool) {
  const PoolRows rows = pool_rows(is_max);
  const int64_t row_work = p.out_w * c * p.kh * p.kw;
  pfor(pool, n * p.out_h, [&](int64_t b, int64_t e, int) { rows(in, h, w, c, p, out, b, e); },
       row_grain(row_work));
}

}  // namespace

void max_pool(const float* in, int64_t n, int64_t h, int64_t w, int64_t c, const PoolParams& p,
              float* out, ThreadPool& pool) {
  pool_dispatch(true, in, n, h, w, c, p, out, pool);
}

void avg_pool(const float* in, int64_t n, int64_t h, int64_t w, int64_t c, const PoolParams& p,
              float* out, ThreadPool& pool) {
  pool_dispatch(false, in, n, h, w, c, p, out, pool);
}

void max_pool_pack(const float* in, int64_t n, int64_t h, int64_t w, int64_t c,
                   const PoolParams& p, const float* thr, const uint8_t* flip, float* stage,
                   word_t* out, ThreadPool& pool) {
  const PoolRows rows = pool_rows(true);
  const int64_t row_elems = p.out_w * c, words = words_for(c);
  pfor(pool, n * p.out_h, [&](int64_t b, int64_t e, int) {
    rows(in, h, w, c, p, stage, b, e);
    pack_rows(stage + b * row_elems, (e - b) * p.out_w, static_cast<int>(c), c,
              out + b * p.out_w * words, thr, flip, nullptr);
  }, row_grain(row_elems * p.kh * p.kw));
}

void max_pool_bits(const word_t* in, int64_t n, int64_t h, int64_t w, int64_t words,
                   const PoolParams& p, const word_t* or_mask, word_t* out, ThreadPool& pool) {
  pfor(pool, n * p.out_h, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t ni = r / p.out_h, oy = r % p.out_h;
      const int64_t y0 = std::max<int64_t>(0, oy * p.sh - p.ph);
      const int64_t y1 = std::min<int64_t>(h, oy * p.sh - p.ph + p.kh);
      for (int64_t ox = 0; ox < p.out_w; ++ox) {
        const int64_t x0 = std::max<int64_t>(0, ox * p.sw - p.pw);
        const int64_t x1 = std::min<int64_t>(w, ox * p.sw - p.pw + p.kw);
        word_t* o = out + (r * p.out_w + ox) * words;
        for (int64_t k = 0; k < words; ++k) {
          word_t all = ~word_t{0}, any = 0;
          for (int64_t y = y0; y < y1; ++y)
            for (int64_t x = x0; x < x1; ++x) {
              const word_t v = in[((ni * h + y) * w + x) * words + k];
              all &= v;
              any |= v;
            }
          o[k] = (all & ~or_mask[k]) | (any & or_mask[k]);
        }
      }
    }
  }, 1);
}

void adaptive_avg_pool(const float* in, int64_t n, int64_t h, int64_t w, int64_t c,
                       int64_t out_h, int64_t out_w, float* out, ThreadPool& pool) {
  pfor(pool, n * out_h, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t ni = r / out_h, oy = r % out_h;
      const int64_t y0 = oy * h / out_h, y1 = ((oy + 1) * h + out_h - 1) / out_h;
      for (int64_t ox = 0; ox < out_w; ++ox) {
        const int64_t x0 = ox * w / out_w, x1 = ((ox + 1) * w + out_w - 1) / out_w;
        float* o = out + (r * out_w + ox) * c;
        for (int64_t ch = 0; ch < c; ++ch) o[ch] = 0.0f;
        for (int64_t y = y0; y < y1; ++y)
          for (int64_t x = x0; x < x1; ++x) {
            const float* src = in + ((ni * h + y) * w + x) * c;
            for (int64_t ch = 0; ch < c; ++ch) o[ch] += src[ch];
          }
        const float inv = 1.0f / static_cast<float>((y1 - y0) * (x1 - x0));
        for (int64_t ch = 0; ch < c; ++ch) o[ch] *= inv;
      }
    }
  }, 1);
}

void mean_abs_affine(const float* in, int64_t rows, int64_t c, const float* scale,
                     const float* shift, float* out, ThreadPool& pool) {
  pfor(pool, rows, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const float* x = in + r * c;
      float s = 0.0f;
      for (int64_t ch = 0; ch < c; ++ch) s += std::fabs(x[ch] * scale[ch] + shift[ch]);
      out[r] = s / static_cast<float>(c);
    }
  }, row_grain(c));
}

}  // namespace hbn

#include "runtime/ops.h"

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

void nchw_to_nhwc(const float* in, int64_t n, int64_t c, int64_t h, int64_t w,
                  const int64_t s[4], float* out, ThreadPool& pool) {
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
  const int64_t hw = h * w;
  pfor(pool, n * c, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t ni = r / c, ch = r % c;
      const float* src = in + ni * hw * c + ch;
      float* o = out + r * hw;
      for (int64_t p = 0; p < hw; ++p) o[p] = src[p * c];
    }
  }, row_grain(hw));
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

void max_pool(const float* in, int64_t n, int64_t h, int64_t w, int64_t c, const PoolParams& p,
              float* out, ThreadPool& pool) {
  pfor(pool, n * p.out_h, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t ni = r / p.out_h, oy = r % p.out_h;
      const int64_t y0 = std::max<int64_t>(0, oy * p.sh - p.ph);
      const int64_t y1 = std::min<int64_t>(h, oy * p.sh - p.ph + p.kh);
      for (int64_t ox = 0; ox < p.out_w; ++ox) {
        const int64_t x0 = std::max<int64_t>(0, ox * p.sw - p.pw);
        const int64_t x1 = std::min<int64_t>(w, ox * p.sw - p.pw + p.kw);
        float* o = out + (r * p.out_w + ox) * c;
        for (int64_t ch = 0; ch < c; ++ch) o[ch] = -std::numeric_limits<float>::infinity();
        for (int64_t y = y0; y < y1; ++y)
          for (int64_t x = x0; x < x1; ++x) {
            const float* src = in + ((ni * h + y) * w + x) * c;
            for (int64_t ch = 0; ch < c; ++ch) o[ch] = std::max(o[ch], src[ch]);
          }
      }
    }
  }, 1);
}

void avg_pool(const float* in, int64_t n, int64_t h, int64_t w, int64_t c, const PoolParams& p,
              float* out, ThreadPool& pool) {
  pfor(pool, n * p.out_h, [&](int64_t b, int64_t e, int) {
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
        float* o = out + (r * p.out_w + ox) * c;
        for (int64_t ch = 0; ch < c; ++ch) o[ch] = 0.0f;
        for (int64_t y = y0; y < y1; ++y)
          for (int64_t x = x0; x < x1; ++x) {
            const float* src = in + ((ni * h + y) * w + x) * c;
            for (int64_t ch = 0; ch < c; ++ch) o[ch] += src[ch];
          }
        const float inv = div > 0 ? 1.0f / static_cast<float>(div) : 0.0f;
        for (int64_t ch = 0; ch < c; ++ch) o[ch] *= inv;
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

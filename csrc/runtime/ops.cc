#include "runtime/ops.h"

#include "bitpack/bitpack.h"
#include "runtime/ops_kernels.h"
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

namespace {

// Pixels [p0, p1) of C contiguous channel planes (stride cs) to NHWC. With C a compile-time
// constant each pixel is C straight copies: the tile transpose would run its scalar edge loop
// for every element when C is below its 8x8 tile (an RGB input).
template <int C>
void nchw_small_to_nhwc(const float* __restrict in, int64_t cs, int64_t p0, int64_t p1,
                        float* __restrict out) {
  for (int64_t p = p0; p < p1; ++p)
    for (int ch = 0; ch < C; ++ch) out[p * C + ch] = in[ch * cs + p];
}

using SmallFn = void (*)(const float*, int64_t, int64_t, int64_t, float*);

SmallFn small_layout_fn(int64_t c) {
  switch (c) {
    case 1: return nchw_small_to_nhwc<1>;
    case 2: return nchw_small_to_nhwc<2>;
    case 3: return ops_kernels().select()->nchw3_to_nhwc;
    case 4: return nchw_small_to_nhwc<4>;
    default: return nullptr;
  }
}

}  // namespace

namespace {
// Exponent bits all set means inf or NaN. Branch-free over a run, so it vectorises.
bool run_finite(const float* x, int64_t n) {
  uint32_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, x + i, sizeof u);
    bad |= static_cast<uint32_t>((u & 0x7f800000u) == 0x7f800000u);
  }
  return bad == 0;
}
}  // namespace

bool all_finite(const float* x, const int64_t shape[4], const int64_t strides[4]) {
  const bool contiguous = strides[3] == 1 && strides[2] == shape[3] &&
                          strides[1] == shape[2] * shape[3] &&
                          strides[0] == shape[1] * shape[2] * shape[3];
  if (contiguous) return run_finite(x, shape[0] * strides[0]);
  for (int64_t a = 0; a < shape[0]; ++a)
    for (int64_t b = 0; b < shape[1]; ++b)
      for (int64_t c = 0; c < shape[2]; ++c) {
        const float* row = x + a * strides[0] + b * strides[1] + c * strides[2];
        if (strides[3] == 1) {
          if (!run_finite(row, shape[3])) return false;
        } else {
          for (int64_t d = 0; d < shape[3]; ++d)
            if (!std::isfinite(row[d * strides[3]])) return false;
        }
      }
  return true;
}

void nchw_to_nhwc(const float* in, int64_t n, int64_t c, int64_t h, int64_t w,
                  const int64_t s[4], float* out, ThreadPool& pool) {
  const int64_t hw = h * w;
  const SmallFn small = (s[3] == 1 && s[2] == w) ? small_layout_fn(c) : nullptr;
  if (small) {
    const int64_t chunk = 1024;  // pixels per task: whole cache lines of every plane
    const int64_t tiles = (hw + chunk - 1) / chunk;
    pfor(pool, n * tiles, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t ni = t / tiles, p0 = (t % tiles) * chunk, p1 = std::min(hw, p0 + chunk);
        small(in + ni * s[0], s[1], p0, p1, out + ni * hw * c);
      }
    }, std::max<int64_t>(1, kElemGrain / (chunk * c)));
    return;
  }
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
  // the fused kernel with no sinks, over rows long enough to hide its per-row work
  constexpr int64_t kRow = 1024;
  const int64_t rows = count / kRow, tail = count - rows * kRow;
  if (rows) add_fused(a, b_, rows, kRow, relu_after, out, nullptr, 0, pool);
  if (tail) add_fused(a + rows * kRow, b_ + rows * kRow, 1, tail, relu_after, out + rows * kRow, nullptr, 0, pool);
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

namespace {

template <int W>
void copy_word_rows(const word_t* __restrict in, int64_t out_words, int64_t w_offset,
                    word_t* __restrict out, int64_t b, int64_t e) {
  for (int64_t r = b; r < e; ++r) std::memcpy(out + r * out_words + w_offset, in + r * W, sizeof(word_t) * W);
}

}  // namespace

void copy_words(const word_t* in, int64_t rows, int64_t words, int64_t out_words,
                int64_t w_offset, word_t* out, ThreadPool& pool) {
  pfor(pool, rows, [&](int64_t b, int64_t e, int) {
    // Rows are a few words: a library memcpy call per row costs more than the copy, so the
    // usual widths get a fixed-size copy the compiler turns into plain moves.
    switch (words) {
      case 1: return copy_word_rows<1>(in, out_words, w_offset, out, b, e);
      case 2: return copy_word_rows<2>(in, out_words, w_offset, out, b, e);
      case 3: return copy_word_rows<3>(in, out_words, w_offset, out, b, e);
      case 4: return copy_word_rows<4>(in, out_words, w_offset, out, b, e);
      default: break;
    }
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

namespace {

// One task covers whole output rows; rows are grouped so a task reads at least ~kElemGrain
// input elements (small late layers would otherwise pay a wake-up per row).
void pool_dispatch(bool is_max, const float* in, int64_t n, int64_t h, int64_t w, int64_t c,
                   const PoolParams& p, float* out, ThreadPool& pool) {
  const OpsKernels& k = *ops_kernels().select();
  const auto rows = is_max ? k.max_pool_rows : k.avg_pool_rows;
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

void max_pool_into(const float* in, int64_t n, int64_t h, int64_t w, int64_t c, const PoolParams& p,
                   float* out, int64_t out_c, ThreadPool& pool) {
  const auto fn = ops_kernels().select()->max_pool_rows_to;
  pfor(pool, n * p.out_h, [&](int64_t b, int64_t e, int) { fn(in, h, w, c, p, out, out_c, b, e); },
       row_grain(p.out_w * c * p.kh * p.kw));
}

void max_pool_pack(const float* in, int64_t n, int64_t h, int64_t w, int64_t c,
                   const PoolParams& p, const float* thr, const uint8_t* flip, word_t* out,
                   ThreadPool& pool) {
  // The fused kernel compares the pooled registers directly: nothing is staged.
  const PackTarget t = make_pack_target(thr, flip, c);
  const PackSink s = t.sink(out);
  max_pool_fused(in, n, h, w, c, p, nullptr, &s, 1, pool);
}

namespace {

inline bool sink_bit(const PackSink& s, float y, int64_t ch) {
  return (s.flip && s.flip[ch]) ? (y > s.thr[ch]) : (y < s.thr[ch]);
}

// The scalar definitions of the fused ops: the unfused op's value, then pack_rows' rule.
void max_pool_fused_rows_ref(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p,
                             float* out, const PackSink* s, int ns, int64_t b, int64_t e) {
  const int64_t words = words_for(c);
  for (int64_t r = b; r < e; ++r) {
    const int64_t ni = r / p.out_h, oy = r % p.out_h;
    const auto [y0, y1] = p.rows(oy, h);
    for (int64_t ox = 0; ox < p.out_w; ++ox) {
      const auto [x0, x1] = p.cols(ox, w);
      const int64_t row = r * p.out_w + ox;
      for (int k = 0; k < ns; ++k)
        for (int64_t q = 0; q < words; ++q) s[k].out[row * words + q] = 0;
      for (int64_t ch = 0; ch < c; ++ch) {
        float m = in[((ni * h + y0) * w + x0) * c + ch];
        for (int64_t y = y0; y < y1; ++y)
          for (int64_t x = x0; x < x1; ++x) {
            const float v = in[((ni * h + y) * w + x) * c + ch];
            m = m < v ? v : m;
          }
        if (out) out[row * c + ch] = m;
        for (int k = 0; k < ns; ++k)
          if (sink_bit(s[k], m, ch)) s[k].out[row * words + ch / kWordBits] |= word_t{1} << (ch % kWordBits);
      }
    }
  }
}

void add_fused_rows_ref(const float* a, const float* b, int64_t c, bool relu, float* out,
                        const PackSink* s, int ns, int64_t r0, int64_t r1) {
  const int64_t words = words_for(c);
  for (int64_t r = r0; r < r1; ++r) {
    for (int k = 0; k < ns; ++k)
      for (int64_t q = 0; q < words; ++q) s[k].out[r * words + q] = 0;
    for (int64_t ch = 0; ch < c; ++ch) {
      float y = a[r * c + ch] + b[r * c + ch];
      if (relu && !(y > 0.0f)) y = 0.0f;
      if (out) out[r * c + ch] = y;
      for (int k = 0; k < ns; ++k)
        if (sink_bit(s[k], y, ch)) s[k].out[r * words + ch / kWordBits] |= word_t{1} << (ch % kWordBits);
    }
  }
}

void nchw_pack_pixels_ref(const float* in, int64_t c, int64_t cs, int64_t p0, int64_t p1,
                          const PackSink& s, word_t* out) {
  const int64_t words = words_for(c);
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t q = 0; q < words; ++q) {
      word_t bits = 0;
      const int64_t c1 = std::min<int64_t>(c, (q + 1) * kWordBits);
      for (int64_t ch = q * kWordBits; ch < c1; ++ch)
        bits |= static_cast<word_t>(sink_bit(s, in[ch * cs + p], ch)) << (ch % kWordBits);
      out[p * words + q] = bits;
    }
}

}  // namespace

OpsKernels ops_kernels_scalar() {
  return OpsKernels{max_pool_rows_impl, avg_pool_rows_impl, max_pool_fused_rows_ref, add_fused_rows_ref,
                    nchw_pack_pixels_ref, nchw_small_to_nhwc<3>, max_pool_bits_rows_impl,
                    max_pool_rows_to_impl};
}

PackSink PackTarget::sink(word_t* out) const {
  PackSink s;
  s.thr = thr.data();
  s.flip = flip.empty() ? nullptr : flip.data();
  s.sign = sign.data();
  s.thr_x = thr_x.data();
  s.out = out;
  return s;
}

PackTarget make_pack_target(const float* thr, const uint8_t* flip, int64_t c) {
  PackTarget t;
  const size_t padded = static_cast<size_t>((c + 15) / 16 * 16);
  t.thr.assign(static_cast<size_t>(c), 0.0f);
  if (thr) std::copy(thr, thr + c, t.thr.begin());
  if (flip) t.flip.assign(flip, flip + c);
  t.sign.assign(padded, 0.0f);
  t.thr_x.assign(padded, 0.0f);
  for (int64_t ch = 0; ch < c; ++ch) {
    const bool f = flip && flip[ch];
    t.sign[ch] = f ? -0.0f : 0.0f;
    t.thr_x[ch] = f ? -t.thr[ch] : t.thr[ch];
  }
  return t;
}

void max_pool_fused(const float* in, int64_t n, int64_t h, int64_t w, int64_t c,
                    const PoolParams& p, float* out, const PackSink* sinks, int n_sinks,
                    ThreadPool& pool) {
  const auto fn = ops_kernels().select()->max_pool_fused_rows;
  const int64_t row_work = p.out_w * c * p.kh * p.kw;
  for (int first = 0; first == 0 || first < n_sinks; first += kMaxPackSinks) {
    const int ns = std::min(kMaxPackSinks, std::max(0, n_sinks - first));
    float* o = first == 0 ? out : nullptr;
    pfor(pool, n * p.out_h, [&](int64_t b, int64_t e, int) {
      fn(in, h, w, c, p, o, sinks + first, ns, b, e);
    }, row_grain(row_work));
  }
}

void pack_pixels_strided(const float* in, int64_t n, int64_t h, int64_t w, int64_t c, int sh, int sw,
                         const float* thr, const uint8_t* flip, word_t* out, ThreadPool& pool) {
  const int64_t oh = (h + sh - 1) / sh, ow = (w + sw - 1) / sw, words = words_for(c);
  pfor(pool, n * oh, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t img = r / oh, y = (r % oh) * sh;
      pack_rows(in + (img * h + y) * w * c, ow, static_cast<int>(c), sw * c, out + r * ow * words, thr, flip);
    }
  }, row_grain(ow * c));
}

void max_pool_fused_range(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p,
                          float* out, const PackSink* sinks, int n_sinks, int64_t r0, int64_t r1) {
  const OpsKernels& k = *ops_kernels().select();
  if (n_sinks == 0) return k.max_pool_rows(in, h, w, c, p, out, r0, r1);
  for (int first = 0; first < n_sinks; first += kMaxPackSinks) {
    const int ns = std::min(kMaxPackSinks, n_sinks - first);
    k.max_pool_fused_rows(in, h, w, c, p, first == 0 ? out : nullptr, sinks + first, ns, r0, r1);
  }
}

void add_fused(const float* a, const float* b_, int64_t rows, int64_t c, bool relu_after,
               float* out, const PackSink* sinks, int n_sinks, ThreadPool& pool) {
  const auto fn = ops_kernels().select()->add_fused_rows;
  for (int first = 0; first == 0 || first < n_sinks; first += kMaxPackSinks) {
    const int ns = std::min(kMaxPackSinks, std::max(0, n_sinks - first));
    // later passes recompute the sum (exactly) rather than store it twice
    float* o = first == 0 ? out : nullptr;
    pfor(pool, rows, [&](int64_t r0, int64_t r1, int) {
      fn(a, b_, c, relu_after, o, sinks + first, ns, r0, r1);
    }, row_grain(c));
  }
}

void nchw_pack(const float* in, int64_t n, int64_t c, int64_t h, int64_t w, const int64_t s[4],
               const PackSink& sink, ThreadPool& pool) {
  const int64_t hw = h * w, words = words_for(c);
  if (s[3] == 1 && s[2] == w) {
    const auto fn = ops_kernels().select()->nchw_pack_pixels;
    const int64_t chunk = 64;
    const int64_t tiles = (hw + chunk - 1) / chunk;
    pfor(pool, n * tiles, [&](int64_t b, int64_t e, int) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t ni = t / tiles, p0 = (t % tiles) * chunk, p1 = std::min(hw, p0 + chunk);
        fn(in + ni * s[0], c, s[1], p0, p1, sink, sink.out + ni * hw * words);
      }
    }, row_grain(chunk * c));
    return;
  }
  // General strides: gather one pixel's channels, then the reference rule.
  pfor(pool, n * h, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t ni = r / h, y = r % h;
      const float* base = in + ni * s[0] + y * s[2];
      for (int64_t x = 0; x < w; ++x) {
        word_t* o = sink.out + (r * w + x) * words;
        for (int64_t q = 0; q < words; ++q) o[q] = 0;
        for (int64_t ch = 0; ch < c; ++ch)
          if (sink_bit(sink, base[ch * s[1] + x * s[3]], ch)) o[ch / kWordBits] |= word_t{1} << (ch % kWordBits);
      }
    }
  }, row_grain(w * c));
}

void max_pool_bits(const word_t* in, int64_t n, int64_t h, int64_t w, int64_t words,
                   const PoolParams& p, const word_t* or_mask, word_t* out, ThreadPool& pool) {
  const auto fn = ops_kernels().select()->max_pool_bits_rows;
  pfor(pool, n * p.out_h, [&](int64_t b, int64_t e, int) {
    fn(in, h, w, words, p, or_mask, out, b, e);
  }, row_grain(p.out_w * words * p.kh * p.kw));
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
        const float inv = 1.0f / static_cast<float>((y1 - y0) * (x1 - x0));
        // Per block of 32 channels the sums stay in registers across the window (summing into
        // `o` loaded and stored it once per pixel: SqueezeNet's 13x13x1000 global pool took
        // 18 us). Each channel still adds its pixels in the same (y, x) order from 0.0f, lane
        // by lane, so the result is the plain loop's bit for bit.
        typedef float F4 __attribute__((vector_size(16)));
        constexpr int64_t kBlk = 32, kV = kBlk / 4;
        for (int64_t c0 = 0; c0 < c; c0 += kBlk) {
          const int64_t nb = std::min(kBlk, c - c0);
          float acc[kBlk];
          if (nb == kBlk) {
            F4 a[kV] = {};
            for (int64_t y = y0; y < y1; ++y)
              for (int64_t x = x0; x < x1; ++x) {
                const float* src = in + ((ni * h + y) * w + x) * c + c0;
                for (int64_t k = 0; k < kV; ++k) {
                  F4 v;
                  std::memcpy(&v, src + 4 * k, sizeof v);
                  a[k] += v;
                }
              }
            std::memcpy(acc, a, sizeof acc);
          } else {
            for (int64_t k = 0; k < nb; ++k) acc[k] = 0.0f;
            for (int64_t y = y0; y < y1; ++y)
              for (int64_t x = x0; x < x1; ++x) {
                const float* src = in + ((ni * h + y) * w + x) * c + c0;
                for (int64_t k = 0; k < nb; ++k) acc[k] += src[k];
              }
          }
          for (int64_t k = 0; k < nb; ++k) o[c0 + k] = acc[k] * inv;
        }
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

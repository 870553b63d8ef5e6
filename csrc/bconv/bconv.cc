#include "bconv/bconv.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "bconv/bconv_kernels.h"
#include "bconv/bconv_klanes.h"
#include "bitpack/binarize.h"

namespace hbn {

using detail::BKernel;
using detail::kBlockN;
using detail::kMaxMR;
using detail::TileArgs;

// ---------------------------------------------------------------------------------------
// Reference
// ---------------------------------------------------------------------------------------

using detail::popcount64;

void bconv2d_reference(const ConvGeometry& g, const word_t* in, int n, int in_h, int in_w,
                       const word_t* weight_bits, int32_t* out, InputDomain domain) {
  const int C = g.in_channels, OC = g.out_channels, KH = g.kernel_h, KW = g.kernel_w;
  const int64_t W = words_for(C);
  const bool zero_one = domain == InputDomain::zero_one;
  const int OH = g.out_h(in_h), OW = g.out_w(in_w);
  for (int b = 0; b < n; ++b)
    for (int oh = 0; oh < OH; ++oh)
      for (int ow = 0; ow < OW; ++ow)
        for (int oc = 0; oc < OC; ++oc) {
          int32_t acc = 0;
          for (int kh = 0; kh < KH; ++kh)
            for (int kx = 0; kx < KW; ++kx) {
              const int ih = oh * g.stride_h - g.pad_h + kh;
              const int iw = ow * g.stride_w - g.pad_w + kx;
              // A padded tap is a binarized 0: it adds nothing (PyTorch zero padding).
              if (ih < 0 || ih >= in_h || iw < 0 || iw >= in_w) continue;
              const word_t* x = in + ((static_cast<int64_t>(b) * in_h + ih) * in_w + iw) * W;
              const word_t* w = weight_bits + ((static_cast<int64_t>(oc) * KH + kh) * KW + kx) * W;
              if (zero_one) {
                // a = 1 where the input bit is 0: those channels add +1 (weight bit 0) or -1.
                for (int64_t i = 0; i < W; ++i) {
                  const int real = static_cast<int>(std::min<int64_t>(kWordBits, C - i * kWordBits));
                  const word_t mask = real == kWordBits ? ~word_t{0} : (word_t{1} << real) - 1;
                  const word_t ones = ~x[i] & mask;
                  acc += popcount64(ones & ~w[i]) - popcount64(ones & w[i]);
                }
                continue;
              }
              int pc = 0;
              for (int64_t i = 0; i < W; ++i) pc += popcount64(x[i] ^ w[i]);
              // C real channels agree or disagree; tail bits are 0 on both sides.
              acc += C - 2 * pc;
            }
          out[((static_cast<int64_t>(b) * OH + oh) * OW + ow) * OC + oc] = acc;
        }
}

// ---------------------------------------------------------------------------------------
// Portable micro-kernel (the "scalar" path)
// ---------------------------------------------------------------------------------------

namespace detail {
namespace {

constexpr int kScalarMR = 4, kScalarNB = 4;

void tile_scalar(const TileArgs& t) {
  uint32_t acc[kScalarMR][kScalarNB] = {};
  const word_t* b = t.b;
  for (int s = 0; s < t.nseg; ++s) {
    const word_t* a[kScalarMR];
    for (int i = 0; i < kScalarMR; ++i) a[i] = t.a[i] + s * t.seg_stride;
    for (int64_t k = 0; k < t.seg_len; ++k, b += t.b_ks)
      for (int i = 0; i < kScalarMR; ++i) {
        const word_t x = a[i][k];
        for (int j = 0; j < kScalarNB; ++j) acc[i][j] += popcount64(x ^ b[j]);
      }
  }
  int32_t pc[kScalarMR][kScalarNB];
  for (int i = 0; i < kScalarMR; ++i)
    for (int j = 0; j < kScalarNB; ++j) pc[i][j] = static_cast<int32_t>(acc[i][j]);
  tile_epilogue_ref(t, &pc[0][0], kScalarNB);
}

}  // namespace

BKernel bkernel_scalar() { return {kScalarMR, kScalarNB, tile_scalar}; }

std::vector<word_t> pack_klanes(const word_t* blocks, int64_t kc, int64_t ocpad, int nseg, int64_t len) {
  const int64_t steps = (len + 1) / 2, gw = kklanes_group_words(nseg, len);
  std::vector<word_t> out(static_cast<size_t>(ocpad / kKlanesChannels * gw), 0);
  for (int64_t oc = 0; oc < ocpad; ++oc) {
    const int64_t g = oc / kKlanesChannels, c = oc % kKlanesChannels;
    for (int s = 0; s < nseg; ++s)
      for (int64_t w = 0; w < len; ++w) {
        const int64_t k = s * len + w;
        out[static_cast<size_t>(g * gw + ((s * steps + w / 2) * kKlanesChannels + c) * 2 + w % 2)] =
            blocks[((oc / kBlockN) * kc + k) * kBlockN + oc % kBlockN];
      }
  }
  return out;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------
// BConv2d
// ---------------------------------------------------------------------------------------

namespace {

constexpr int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Valid taps [lo, hi) of output position o along one axis, 0 <= lo <= hi <= k. Padding can
// exceed the kernel (PyTorch accepts it): a window wholly in the padding is the empty range
// [k, k) or [0, 0), never an index past the prefix table.
inline void tap_range(int o, int stride, int pad, int k, int in, int* lo, int* hi) {
  const int start = o * stride - pad;
  *lo = std::min(k, std::max(0, -start));
  *hi = std::max(*lo, std::min(k, in - start));
}

// Output positions [lo, hi) along one axis whose tap k (of kernel offset k) is inside [0, in).
inline void tap_range_inv(int out, int stride, int pad, int k, int in, int* lo, int* hi) {
  // o * stride - pad + k >= 0  and  o * stride - pad + k < in
  const int a = pad - k;  // o * stride >= a
  *lo = a <= 0 ? 0 : (a + stride - 1) / stride;
  const int bnd = in - 1 + pad - k;  // o * stride <= bnd
  *hi = bnd < 0 ? 0 : std::min(out, bnd / stride + 1);
  *lo = std::min(*lo, *hi);
}

// Output positions along one axis fall into classes with the same valid tap range. Both
// ends of the range are non-increasing in o, so a range never recurs once it changed:
// classes are runs. Fills cls[o] and ranges[2*c], ranges[2*c+1] when non-null.
int axis_classes(int out, int stride, int pad, int k, int in, int32_t* cls, int32_t* ranges) {
  int count = 0, plo = -1, phi = -1;
  for (int o = 0; o < out; ++o) {
    int lo, hi;
    tap_range(o, stride, pad, k, in, &lo, &hi);
    if (lo != plo || hi != phi) {
      if (ranges) {
        ranges[2 * count] = lo;
        ranges[2 * count + 1] = hi;
      }
      ++count;
      plo = lo;
      phi = hi;
    }
    if (cls) cls[o] = count - 1;
  }
  return count;
}

// ORs src_words words of bits (bits past the real channels zero) into dst starting at bit
// `off`; dst has `dst_words` words and is never touched past them, so threads filling
// neighbouring rows never share a word.
inline void or_bits(word_t* dst, int64_t dst_words, int64_t off, const word_t* src, int64_t src_words) {
  for (int64_t w = 0; w < src_words; ++w) {
    const word_t v = src[w];
    const int64_t o = off + w * kWordBits, i = o / kWordBits;
    const int sh = static_cast<int>(o % kWordBits);
    dst[i] |= v << sh;
    if (sh && i + 1 < dst_words) dst[i + 1] |= v >> (kWordBits - sh);
  }
}

// Compact-mode gather for few channels, one word per pixel, 3-wide kernels (SqueezeNet's
// 3x3 expands on 16 or 32 channels): a kernel row of a receptive field is one run of 3*C
// bits (48 or 96), kept in registers and slid along the output row (stride 1: shift out one
// pixel, shift in the next), then ORed into the field with two word writes, instead of one
// shifted read-modify-write per tap. Runs start at bit 0, 16, 32 or 48 (C = 16) or 0, 32
// (C = 32) of a word, so they never reach a third word.
template <int C>
struct RunGather {
  static_assert(C == 16 || C == 32, "runs of 48 or 96 bits");
  static constexpr int KW = 3, L = KW * C;
  const word_t* in;
  int in_h, in_w, KH, sh, ph, pw, OH, OW;
  int64_t kc;
  word_t* cols;

  void rows(int64_t r0, int64_t r1) const {
    // Members in locals: the word stores below could alias them otherwise.
    const word_t* const src = in;
    const int H = in_h, Wd = in_w, nkh = KH, stride_h = sh, pad_h = ph, pad_w = pw, oh_n = OH, ow_n = OW;
    const int64_t k = kc;
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / oh_n, oh = r % oh_n;
      word_t* row0 = cols + r * ow_n * k;
      std::fill_n(row0, ow_n * k, word_t{0});
      for (int kh = 0; kh < nkh; ++kh) {
        const int64_t ih = oh * stride_h - pad_h + kh;
        if (ih < 0 || ih >= H) continue;  // vertical padding: zero bits
        const word_t* line = src + (b * H + ih) * Wd;
        const int64_t off = static_cast<int64_t>(kh) * L;
        const int s = static_cast<int>(off % kWordBits);
        const bool two = off / kWordBits + 1 < k;  // the field has a word after the run's first
        word_t* dst = row0 + off / kWordBits;
        auto px = [line, Wd](int ix) -> word_t { return (ix >= 0 && ix < Wd) ? line[ix] : 0; };
        const int last = KW - 1 - pad_w;  // input pixel entering the window at output column 0
        if (C == 16) {
          // run = pixels ow - pad_w .. ow - pad_w + 2 at bits 0, 16, 32.
          word_t run = (px(last - 2) << 16) | (px(last - 1) << 32);
          for (int ow = 0; ow < ow_n; ++ow, dst += k) {
            run = (run >> 16) | (px(last + ow) << 32);
            dst[0] |= run << s;
            if (s > 16 && two) dst[1] |= run >> (kWordBits - s);
          }
        } else {
          // run = lo (pixels ow - pad_w, ow - pad_w + 1) and hi (pixel ow - pad_w + 2).
          word_t lo = px(last - 2) << 32, hi = px(last - 1);
          for (int ow = 0; ow < ow_n; ++ow, dst += k) {
            lo = (lo >> 32) | (hi << 32);
            hi = px(last + ow);
            if (s == 0) {
              dst[0] |= lo;
              if (two) dst[1] |= hi;
            } else {
              dst[0] |= lo << 32;
              if (two) dst[1] |= (lo >> 32) | (hi << 32);
            }
          }
        }
      }
    }
  }
};

// Carves the caller's workspace into aligned sections; with base == null it only measures.
struct Carver {
  char* base;
  size_t used = 0;
  template <class T>
  T* take(int64_t count) {
    used = round_up(static_cast<int64_t>(used), kAlignment);
    T* p = base ? reinterpret_cast<T*>(base + used) : nullptr;
    used += static_cast<size_t>(count) * sizeof(T);
    return p;
  }
};

struct Workspace {
  float *scale, *bias, *thr;
  int32_t *flipmask, *zeros, *hcls, *wcls, *hrange, *wrange, *base, *ithr, *rowcls;
  word_t* inv;  // integer-threshold bit mode: channels whose compare is inverted, one bit each
  int32_t* cut;  // and each channel's cut D, when not from the object's cache
  int64_t* rowoff;
  word_t* padded;
  word_t* cols;  // compact mode: gathered receptive fields [M][kc]
};

Workspace carve(Carver& c, const ConvGeometry& g, int n, int in_h, int in_w, int nhc, int nwc, bool compact,
                int64_t kc) {
  const int64_t OCpad = round_up(g.out_channels, kBlockN);
  const int OH = g.out_h(in_h), OW = g.out_w(in_w);
  const int64_t M = static_cast<int64_t>(n) * OH * OW;
  Workspace w;
  // One spare block past OCpad: a tile narrower than a vector (e.g. 4 channels) still loads a
  // full vector from its first channel.
  w.scale = c.take<float>(OCpad + kBlockN);
  w.bias = c.take<float>(OCpad + kBlockN);
  w.thr = c.take<float>(OCpad + kBlockN);
  w.flipmask = c.take<int32_t>(OCpad + kBlockN);
  w.zeros = c.take<int32_t>(OCpad);
  w.hcls = c.take<int32_t>(OH);
  w.wcls = c.take<int32_t>(OW);
  w.hrange = c.take<int32_t>(2 * nhc);
  w.wrange = c.take<int32_t>(2 * nwc);
  w.base = c.take<int32_t>(static_cast<int64_t>(nhc) * nwc * OCpad + kBlockN);
  w.ithr = c.take<int32_t>(static_cast<int64_t>(nhc) * nwc * OCpad + kBlockN);
  w.inv = c.take<word_t>(OCpad / kWordBits + 2);
  w.cut = c.take<int32_t>(OCpad);
  w.rowcls = c.take<int32_t>(M + kMaxMR);
  w.rowoff = c.take<int64_t>(M + kMaxMR);
  const bool pad = !compact && (g.pad_h || g.pad_w);
  w.cols = c.take<word_t>(compact ? M * kc : 0);
  w.padded = c.take<word_t>(pad ? static_cast<int64_t>(n) * (in_h + 2 * g.pad_h) * (in_w + 2 * g.pad_w) *
                                      words_for(g.in_channels)
                                : 0);
  return w;
}

inline int32_t floor_half(int32_t x) { return x >= 0 ? x / 2 : -((1 - x) / 2); }

// Integer-threshold bit mode. With finite scale and bias and no per-pixel scale, the output
// bit of a channel is a function of the integer dot product d alone, and a monotone one: d ->
// float(d) is exact, rounding a product or a sum is monotone, so is ReLU, so y(d) is monotone
// (non-decreasing for scale > 0, non-increasing for scale < 0, constant for scale = +-0) and
// a threshold compare on it is true on a prefix or a suffix of the d range. Finds, exactly by
// evaluating the scalar rule, the first d of the suffix whose bit is `target`:
// prefix (true for d < D): target = false; suffix (true for d >= D): target = true.
// Returns dhi + 1 when no d in [dlo, dhi] has the target bit.
template <class Bit>
int32_t first_target(const Bit& bit, bool target, int32_t dlo, int32_t dhi, double guess) {
  int32_t g = 0;
  if (guess == guess) g = static_cast<int32_t>(std::max<double>(dlo, std::min<double>(dhi, std::floor(guess))));
  int32_t lo, hi;  // bit(lo) != target (or lo = dlo - 1), bit(hi) == target (or hi = dhi + 1)
  if (bit(g) == target) {
    hi = g;
    int32_t step = 1;
    for (;;) {
      const int32_t c = hi - step;
      if (c < dlo) { lo = dlo - 1; break; }
      if (bit(c) != target) { lo = c; break; }
      hi = c;
      step *= 2;
    }
  } else {
    lo = g;
    int32_t step = 1;
    for (;;) {
      const int32_t c = lo + step;
      if (c > dhi) { hi = dhi + 1; break; }
      if (bit(c) == target) { hi = c; break; }
      lo = c;
      step *= 2;
    }
  }
  while (hi - lo > 1) {
    const int32_t mid = lo + (hi - lo) / 2;
    if (bit(mid) == target) hi = mid;
    else lo = mid;
  }
  return hi;
}

// One class's row of padding-corrected bases, base[oc] = (oc < OC ? K : 0) - tot + rect_mul *
// rect: whole blocks of kBlockN with restrict pointers, so the compiler vectorizes it (the
// scalar form took ~3 cycles per entry: some 2 us per run of a 256-channel 3x3 layer's 9
// classes on Zen 5, against a 47-52 us layer).
void base_row(int32_t* __restrict row, const int32_t* __restrict tot, const int32_t* __restrict p11,
              const int32_t* __restrict p01, const int32_t* __restrict p10, const int32_t* __restrict p00, int64_t OC,
              int64_t OCpad, int32_t k_real, int32_t rect_mul) {
  for (int64_t b = 0; b < OCpad; b += kBlockN) {
    const int32_t k = b + kBlockN <= OC ? k_real : 0;  // a block past OC's last whole one: below
    for (int j = 0; j < kBlockN; ++j)
      row[b + j] = k - tot[b + j] + rect_mul * (p11[b + j] - p01[b + j] - p10[b + j] + p00[b + j]);
  }
  for (int64_t oc = OC / kBlockN * kBlockN; oc < OC; ++oc) row[oc] += k_real;
}

// dst[j] = (src ? src[j] : fill) * mul for j < n (src copied as is when mul is 1), and
// fill * mul for the padding channels n <= j < total.
void param_row(float* __restrict dst, const float* __restrict src, int64_t n, int64_t total, float fill, float mul) {
  const int64_t from_src = src ? n : 0;
  if (mul == 1.0f) std::copy(src, src + from_src, dst);
  else for (int64_t j = 0; j < from_src; ++j) dst[j] = src[j] * mul;
  std::fill(dst + from_src, dst + total, fill * mul);
}
// dst[j] = -1 where flip[j] (j < n), else 0.
void flip_row(int32_t* __restrict dst, const uint8_t* __restrict flip, int64_t n, int64_t total) {
  const int64_t from_flip = flip ? n : 0;
  for (int64_t j = 0; j < from_flip; ++j) dst[j] = flip[j] ? -1 : 0;
  std::fill(dst + from_flip, dst + total, 0);
}

// One output row's entries of the per-row class and offset tables, in fixed-length chunks
// with restrict parameters so -O2 vectorizes them (scalar, they were ~2% of a 56x56 layer).
void row_classes(int32_t* __restrict dst, const int32_t* __restrict wcls, int32_t hb, int n) {
  int i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) dst[i + j] = hb + wcls[i + j];
  for (; i < n; ++i) dst[i] = hb + wcls[i];
}
void row_offsets(int64_t* __restrict dst, int64_t r0, int64_t step, int n) {
  int i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) dst[i + j] = r0 + (i + j) * step;
  for (; i < n; ++i) dst[i] = r0 + i * step;
}

// parallel_for takes a std::function; a lambda capturing one pointer fits its inline storage,
// so dispatching work allocates nothing (run() must not allocate).
template <class F>
void parallel(ThreadPool& pool, int64_t n, F& body) {
  F* fp = &body;
  pool.parallel_for(n, [fp](int64_t b, int64_t e, int t) { (*fp)(b, e, t); });
}

}  // namespace

BConvPacked bconv_packed_sizes(const ConvGeometry& g) {
  BConvPacked p;
  const int64_t C = g.in_channels, W = words_for(C), T = static_cast<int64_t>(g.kernel_h) * g.kernel_w;
  const int64_t dense_bits = T * C;
  p.compact = T > 1 && words_for(dense_bits) < T * W;
  p.kc = p.compact ? words_for(dense_bits) : T * W;
  p.oc_pad = round_up(g.out_channels, kBlockN);
  auto place = [&p](size_t* off, size_t bytes) {
    *off = static_cast<size_t>(round_up(static_cast<int64_t>(p.total), kAlignment));
    p.total = *off + bytes;
  };
  place(&p.panels_off, static_cast<size_t>(p.oc_pad * p.kc) * sizeof(word_t));
  p.panels_bytes = static_cast<size_t>(p.oc_pad * p.kc) * sizeof(word_t);
  if (g.pad_h || g.pad_w) {
    p.prefix_bytes = static_cast<size_t>(g.kernel_h * g.kernel_w * p.oc_pad) * sizeof(int32_t);
    place(&p.prefix_off, p.prefix_bytes);
  }
  if (dense_bits <= 32) {
    p.lane32_bytes = static_cast<size_t>(p.oc_pad) * sizeof(uint32_t);
    place(&p.lane32_off, p.lane32_bytes);
  }
  p.total = static_cast<size_t>(round_up(static_cast<int64_t>(p.total), kAlignment));
  return p;
}

namespace {

// Per-tap weight sums (C - 2 * popcount of the tap's channel bits) of one receptive field row
// in the packed layout (kc words).
void tap_sums_of_row(const ConvGeometry& g, const BConvPacked& p, const word_t* row, int32_t* sums) {
  const int64_t C = g.in_channels, W = words_for(C), T = static_cast<int64_t>(g.kernel_h) * g.kernel_w;
  for (int64_t t = 0; t < T; ++t) {
    int pc = 0;
    if (!p.compact) {
      for (int64_t w = 0; w < W; ++w) pc += popcount64(row[t * W + w]);
    } else {
      for (int64_t b = t * C, e = (t + 1) * C; b < e;) {  // bits [b, e) of the row
        const int64_t i = b / kWordBits, sh = b % kWordBits, n = std::min<int64_t>(e - b, kWordBits - sh);
        const word_t m = n == kWordBits ? ~word_t{0} : ((word_t{1} << n) - 1);
        pc += popcount64((row[i] >> sh) & m);
        b += n;
      }
    }
    sums[t] = static_cast<int32_t>(C - 2 * pc);
  }
}

// The 2-D prefix of a [KH][KW] sum table, [(KH+1)][(KW+1)], zero first row and column.
void prefix_of(int KH, int KW, const int32_t* sums, int32_t* pre) {
  for (int h = 0; h <= KH; ++h)
    for (int w = 0; w <= KW; ++w)
      pre[h * (KW + 1) + w] = (h == 0 || w == 0) ? 0
                                                 : sums[(h - 1) * KW + (w - 1)] + pre[(h - 1) * (KW + 1) + w] +
                                                       pre[h * (KW + 1) + w - 1] - pre[(h - 1) * (KW + 1) + w - 1];
}

// Bits a packed row may have set: the C channel bits of each tap, nothing else.
word_t row_valid_mask(const ConvGeometry& g, const BConvPacked& p, int64_t k) {
  const int64_t C = g.in_channels, W = words_for(C), T = static_cast<int64_t>(g.kernel_h) * g.kernel_w;
  if (p.compact) {
    const int64_t bits = T * C - k * kWordBits;
    return bits >= kWordBits ? ~word_t{0} : ((word_t{1} << bits) - 1);
  }
  const int64_t w = k % W;
  return (w == W - 1 && C % kWordBits) ? ((word_t{1} << (C % kWordBits)) - 1) : ~word_t{0};
}

}  // namespace

void bconv_pack(const ConvGeometry& g, const word_t* weight_bits, void* dst, const BConsumedFn& consumed) {
  const BConvPacked p = bconv_packed_sizes(g);
  const int C = g.in_channels, OC = g.out_channels, KH = g.kernel_h, KW = g.kernel_w;
  const int64_t W = words_for(C), T = static_cast<int64_t>(KH) * KW, kw = T * W, kc = p.kc, OCpad = p.oc_pad;
  char* base = static_cast<char*>(dst);
  std::fill_n(base, p.total, char{0});
  word_t* panels = reinterpret_cast<word_t*>(base + p.panels_off);
  int32_t* prefix = p.prefix_bytes ? reinterpret_cast<int32_t*>(base + p.prefix_off) : nullptr;
  uint32_t* lane32 = p.lane32_bytes ? reinterpret_cast<uint32_t*>(base + p.lane32_off) : nullptr;
  // Tail bits must be 0 for K - 2*popcount to hold; clear them rather than trust the caller.
  const word_t tail_mask = (C % kWordBits) ? ((word_t{1} << (C % kWordBits)) - 1) : ~word_t{0};
  std::vector<word_t> row(static_cast<size_t>(kc));
  std::vector<int32_t> sums(static_cast<size_t>(T)), pre(static_cast<size_t>((KH + 1) * (KW + 1)));
  for (int oc = 0; oc < OC; ++oc) {
    std::fill(row.begin(), row.end(), word_t{0});
    for (int64_t t = 0; t < T; ++t) {
      const word_t* tap = weight_bits + oc * kw + t * W;
      if (p.compact) {
        for (int64_t w = 0; w < W; ++w) {
          const word_t v = w == W - 1 ? tap[w] & tail_mask : tap[w];
          or_bits(row.data(), kc, t * C + w * kWordBits, &v, 1);
        }
      } else {
        for (int64_t w = 0; w < W; ++w) row[static_cast<size_t>(t * W + w)] = w == W - 1 ? tap[w] & tail_mask : tap[w];
      }
    }
    for (int64_t k = 0; k < kc; ++k)
      panels[((oc / kBlockN) * kc + k) * kBlockN + oc % kBlockN] = row[static_cast<size_t>(k)];
    if (lane32) lane32[oc] = static_cast<uint32_t>(row[0]);
    if (prefix) {
      tap_sums_of_row(g, p, row.data(), sums.data());
      prefix_of(KH, KW, sums.data(), pre.data());
      for (int h = 1; h <= KH; ++h)  // row and column 0 of the prefix are 0: not stored
        for (int w = 1; w <= KW; ++w)
          prefix[((h - 1) * KW + (w - 1)) * OCpad + oc] = pre[static_cast<size_t>(h * (KW + 1) + w)];
    }
    if (consumed && (oc % kBlockN == kBlockN - 1 || oc == OC - 1))
      consumed(weight_bits, static_cast<size_t>((oc + 1) * kw) * sizeof(word_t));
  }
}

std::vector<word_t> bconv_unpack(const ConvGeometry& g, const void* packed) {
  const BConvPacked p = bconv_packed_sizes(g);
  const int64_t C = g.in_channels, W = words_for(C), T = static_cast<int64_t>(g.kernel_h) * g.kernel_w;
  const word_t* panels = reinterpret_cast<const word_t*>(static_cast<const char*>(packed) + p.panels_off);
  std::vector<word_t> out(static_cast<size_t>(g.out_channels * T * W), 0);
  for (int64_t oc = 0; oc < g.out_channels; ++oc) {
    auto rw = [&](int64_t k) { return panels[((oc / kBlockN) * p.kc + k) * kBlockN + oc % kBlockN]; };
    word_t* dst = out.data() + oc * T * W;
    if (!p.compact) {
      for (int64_t k = 0; k < p.kc; ++k) dst[k] = rw(k);
      continue;
    }
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t b = t * C + c;
        if ((rw(b / kWordBits) >> (b % kWordBits)) & 1u) dst[t * W + c / kWordBits] |= word_t{1} << (c % kWordBits);
      }
  }
  return out;
}

std::string bconv_check_packed(const ConvGeometry& g, const void* packed) {
  const BConvPacked p = bconv_packed_sizes(g);
  const int KH = g.kernel_h, KW = g.kernel_w;
  const int64_t T = static_cast<int64_t>(KH) * KW, OCpad = p.oc_pad, kc = p.kc;
  const char* base = static_cast<const char*>(packed);
  const word_t* panels = reinterpret_cast<const word_t*>(base + p.panels_off);
  const int32_t* prefix = p.prefix_bytes ? reinterpret_cast<const int32_t*>(base + p.prefix_off) : nullptr;
  const uint32_t* lane32 = p.lane32_bytes ? reinterpret_cast<const uint32_t*>(base + p.lane32_off) : nullptr;
  std::vector<word_t> row(static_cast<size_t>(kc));
  std::vector<int32_t> sums(static_cast<size_t>(T)), pre(static_cast<size_t>((KH + 1) * (KW + 1)));
  for (int64_t oc = 0; oc < OCpad; ++oc) {
    const bool real = oc < g.out_channels;
    const std::string ch = "output channel " + std::to_string(oc);
    for (int64_t k = 0; k < kc; ++k) {
      row[static_cast<size_t>(k)] = panels[((oc / kBlockN) * kc + k) * kBlockN + oc % kBlockN];
      if (row[static_cast<size_t>(k)] & ~(real ? row_valid_mask(g, p, k) : word_t{0}))
        return "panel word " + std::to_string(k) + " of " + ch + " has bits set past the input channels" +
               (real ? "" : " (a padding channel must be 0)");
    }
    if (lane32 && lane32[oc] != static_cast<uint32_t>(row[0]))
      return "32-bit lane of " + ch + " does not match its panel word";
    if (prefix) {
      if (real) {
        tap_sums_of_row(g, p, row.data(), sums.data());
        prefix_of(KH, KW, sums.data(), pre.data());
      } else {
        std::fill(pre.begin(), pre.end(), 0);
      }
      for (int h = 1; h <= KH; ++h)
        for (int w = 1; w <= KW; ++w)
          if (prefix[((h - 1) * KW + (w - 1)) * OCpad + oc] != pre[static_cast<size_t>(h * (KW + 1) + w)])
            return "padding prefix table entry (" + std::to_string(h) + ", " + std::to_string(w) + ") of " + ch +
                   " does not match the weights";
    }
  }
  return "";
}

BConv2d::BConv2d(const ConvGeometry& g, const BConvPacked& sizes, const void* packed) : g_(g) {
  attach(sizes, packed);
}

void BConv2d::attach(const BConvPacked& sizes, const void* packed) {
  compact_ = sizes.compact;
  kc_ = sizes.kc;
  const char* base = static_cast<const char*>(packed);
  packed_ = reinterpret_cast<const word_t*>(base + sizes.panels_off);
  if (sizes.prefix_bytes) tap_prefix_ = reinterpret_cast<const int32_t*>(base + sizes.prefix_off);
  if (sizes.lane32_bytes) packed32_ = reinterpret_cast<const uint32_t*>(base + sizes.lane32_off);
  // The NEON K-in-lanes layout, only where its row is the one selected now (the x86 and
  // scalar rows never read it) and it beats the broadcast tile for this geometry; built from
  // the panels, so a view of a file's bconv_panel32 bytes gets it too (always owned).
  const int64_t dense_bits = static_cast<int64_t>(g_.kernel_h) * g_.kernel_w * g_.in_channels;
  const BKernel* sel = detail::bconv_kernels().select();
  if (sel && sel->kl_tile && dense_bits > 32) {
    kl_nseg_ = compact_ || g_.kernel_h == 1 ? 1 : g_.kernel_h;
    kl_len_ = kc_ / kl_nseg_;
    if (detail::klanes_pays(kl_len_)) packed_kl_ = detail::pack_klanes(packed_, kc_, sizes.oc_pad, kl_nseg_, kl_len_);
  }
}

BConv2d::BConv2d(const ConvGeometry& g, const word_t* weight_bits, const BConsumedFn& consumed) : g_(g) {
  if (!g.valid()) throw std::invalid_argument("BConv2d: invalid geometry");
  const BConvPacked p = bconv_packed_sizes(g);
  own_.assign(p.total / sizeof(word_t), 0);
  bconv_pack(g, weight_bits, own_.data(), consumed);
  attach(p, own_.data());
}

void BConv2d::keep_int_thresholds(int64_t out_rows) {
  const BKernel* sel = detail::bconv_kernels().select();
  if (ithr_cache_ || !sel || out_rows < sel->int_thr_rows) return;
  ithr_cache_ = std::make_unique<IntThrCache>();
  const size_t ocpad = static_cast<size_t>(round_up(g_.out_channels, kBlockN));
  ithr_cache_->cut.resize(ocpad);
  ithr_cache_->inv.resize(ocpad / kWordBits + 2);
}

void BConv2d::set_input_domain(InputDomain d) {
  domain_ = d;
  wtot_.clear();
  if (d != InputDomain::zero_one || tap_prefix_) return;
  // Tail bits and padding are 0 in the panels, so the set bits are exactly the -1 weights.
  const int64_t K = static_cast<int64_t>(g_.kernel_h) * g_.kernel_w * g_.in_channels;
  wtot_.resize(static_cast<size_t>(g_.out_channels));
  for (int64_t oc = 0; oc < g_.out_channels; ++oc) {
    int64_t pc = 0;
    for (int64_t k = 0; k < kc_; ++k) pc += popcount64(packed_[((oc / kBlockN) * kc_ + k) * kBlockN + oc % kBlockN]);
    wtot_[static_cast<size_t>(oc)] = static_cast<int32_t>(K - 2 * pc);
  }
}

BConv2d BConv2d::view(const ConvGeometry& g, const void* packed) {
  if (!g.valid()) throw std::invalid_argument("BConv2d: invalid geometry");
  if (reinterpret_cast<uintptr_t>(packed) % alignof(word_t))
    throw std::invalid_argument("BConv2d::view: packed weights not aligned for 64-bit words");
  return BConv2d(g, bconv_packed_sizes(g), packed);
}

BConv2d BConv2d::from_float(const ConvGeometry& g, const float* weight_oihw) {
  if (!g.valid()) throw std::invalid_argument("BConv2d: invalid geometry");
  const std::vector<word_t> bits = binarize_oihw(g, weight_oihw);
  return BConv2d(g, bits.data());
}

size_t BConv2d::workspace_bytes(int n, int in_h, int in_w) const {
  const int OH = g_.out_h(in_h), OW = g_.out_w(in_w);
  if (n <= 0 || OH <= 0 || OW <= 0) return 0;
  const int nhc = axis_classes(OH, g_.stride_h, g_.pad_h, g_.kernel_h, in_h, nullptr, nullptr);
  const int nwc = axis_classes(OW, g_.stride_w, g_.pad_w, g_.kernel_w, in_w, nullptr, nullptr);
  Carver c{nullptr};
  carve(c, g_, n, in_h, in_w, nhc, nwc, compact_, kc_);
  return c.used + kAlignment;  // + slack to align an unaligned workspace pointer
}

void BConv2d::run(const word_t* in, int n, int in_h, int in_w, const OutputTransform& t, float* out,
                  void* workspace, ThreadPool& pool, const RowsDone* rows_done) const {
  run_impl(in, n, in_h, in_w, t, out, nullptr, workspace, pool, rows_done);
}

void BConv2d::run_bits(const word_t* in, int n, int in_h, int in_w, const OutputTransform& t,
                       word_t* out_bits, void* workspace, ThreadPool& pool) const {
  if (!t.out_threshold) throw std::invalid_argument("BConv2d::run_bits needs out_threshold");
  run_impl(in, n, in_h, in_w, t, nullptr, out_bits, workspace, pool, nullptr);
}

namespace {

// Integer-threshold bit mode: each channel's cut D on the dot product (bit(d) = inverted ^ (d <
// D), see first_target) into cut[], the inversion bits into ws.inv; from the output-stage
// parameters in ws (scale, bias, thr, flipmask), exactly by tile_epilogue_ref's rule.
void derive_cuts(const Workspace& ws, int64_t OC, int64_t OCpad, int32_t dot_max, bool relu, int32_t* cut) {
  std::fill(ws.inv, ws.inv + OCpad / kWordBits + 2, word_t{0});
  for (int64_t j = 0; j < OCpad; ++j) {
    int32_t D;
    bool inverted;
    if (j >= OC) {
      D = dot_max + 1;  // padded channels: bit 0 (never stored, kept defined)
      inverted = true;
    } else {
      const float sc = ws.scale[j], bi = ws.bias[j], th = ws.thr[j];
      const bool flip = ws.flipmask[j] != 0;
      // Exactly tile_epilogue_ref's rule for one channel and dot d.
      auto bit = [&](int32_t d) {
        float y = detail::no_contract(static_cast<float>(d) * sc);
        y = y + bi;
        if (relu && !(y > 0.0f)) y = 0.0f;
        return flip ? (y > th) : (y < th);
      };
      if (sc == 0.0f) {  // y is one constant (its sign of zero never changes a compare)
        D = dot_max + 1;
        inverted = !bit(0);
      } else {
        const bool prefix = (sc > 0.0f) != flip;
        D = first_target(bit, !prefix, -dot_max, dot_max, (static_cast<double>(th) - bi) / sc);
        inverted = !prefix;
      }
    }
    if (inverted) ws.inv[j / kWordBits] |= word_t{1} << (j % kWordBits);
    cut[j] = D;
  }
}

// One class's row of integer thresholds: floor((base - D) / 2) per channel (restrict, so it
// vectorizes).
void ithr_row(int32_t* __restrict row, const int32_t* __restrict base, const int32_t* __restrict cut, int64_t n) {
  for (int64_t j = 0; j < n; ++j) row[j] = floor_half(base[j] - cut[j]);
}

// Residual prefetch distance in panels (run_tile). Measured on Zen 5, ResNet-18 layer1 conv2
// with the max-pool output as residual: 0.13-0.16 ms without, 0.09 with 1-4 panels ahead.
constexpr int kResidualAhead = 4;
}  // namespace

void BConv2d::run_impl(const word_t* in, int n, int in_h, int in_w, const OutputTransform& t,
                       float* out_f, word_t* out_b, void* workspace, ThreadPool& pool,
                       const RowsDone* rows_done) const {
  if (!out_f) rows_done = nullptr;
  const int OH = g_.out_h(in_h), OW = g_.out_w(in_w);
  if (n <= 0 || OH <= 0 || OW <= 0) return;
  BKernel kern = *detail::bconv_kernels().select();
  const int int_thr_rows = kern.int_thr_rows;  // kern is replaced by a variant below
  // Fields of at most 32 bits: 32-bit lanes count twice the channels per instruction.
  const bool lane32 = packed32_ && kern.tile32;
  // K-in-lanes tiles where the layer has that layout (NEON); a short last panel runs the row's
  // block-layout tile (tail) instead: a 6-row tile on one row (a batch-1 linear layer) would
  // count 6 rows.
  const bool klanes = !lane32 && kern.kl_tile && !packed_kl_.empty();
  const BKernel tail = kern;
  if (lane32) kern = BKernel{kern.mr32, kBlockN, kern.tile32, true};
  else if (klanes) kern = BKernel{kern.kl_mr, kBlockN, kern.kl_tile, true};
  else if (kc_ == 1 && kern.tile1w) kern = BKernel{kern.mr1w, kBlockN, kern.tile1w, true};
  else if (g_.out_channels <= 16 && kern.narrow) kern = BKernel{kern.narrow_mr, 16, kern.narrow, false};
  else if (out_b && kc_ <= kern.short_kw && kern.tile_short) kern = BKernel{kern.mr_short, kBlockN, kern.tile_short, true};
  const int C = g_.in_channels, OC = g_.out_channels, KH = g_.kernel_h, KW = g_.kernel_w;
  const int64_t W = words_for(C), T = static_cast<int64_t>(KH) * KW;
  const int64_t OCpad = round_up(OC, kBlockN), OCW = words_for(OC);
  const int64_t M = static_cast<int64_t>(n) * OH * OW;
  const int32_t K = static_cast<int32_t>(C * T);

  const int nhc = axis_classes(OH, g_.stride_h, g_.pad_h, KH, in_h, nullptr, nullptr);
  const int nwc = axis_classes(OW, g_.stride_w, g_.pad_w, KW, in_w, nullptr, nullptr);
  const uintptr_t raw = reinterpret_cast<uintptr_t>(workspace);
  Carver carver{reinterpret_cast<char*>(round_up(static_cast<int64_t>(raw), kAlignment))};
  const Workspace ws = carve(carver, g_, n, in_h, in_w, nhc, nwc, compact_, kc_);

  // {0, 1} inputs (a = 1 - bit, weights w = +-1). With b = 1 - 2 bit = 2a - 1 (+-1, the value
  // the kernels' XNOR sees), a = (b + 1) / 2, so over the valid taps
  //   sum a w = (sum b w + sum w) / 2.
  // The kernels compute base - 2 pc, pc = popcount(bits xor w) over all KH*KW taps of the
  // zero-filled (b = +1) padded field, i.e. K - 2 pc = (sum of b w over valid taps) + padW,
  // padW = the weight sum of the padded taps = tot - rect. Hence
  //   2 * sum a w = K - 2 pc + (rect - padW) = (K - tot + 2 rect) - 2 pc:
  // the same kernels with base = K - tot + 2 rect (instead of K - tot + rect) give twice the
  // {0, 1} dot product, an integer within [-2K, 2K], and the output stage halves it through
  // the scale: float(2 s) * (scale / 2) is the exact product s * scale rounded once, as
  // float(s) * scale is, whenever scale / 2 is exact (checked), so outputs are bit-identical
  // to applying the transform to s itself.
  const bool zero_one = domain_ == InputDomain::zero_one;
  const int32_t dot_max = zero_one ? 2 * K : K;  // |base - 2 pc|
  if (zero_one && t.scale)
    for (int64_t j = 0; j < OC; ++j)
      if ((t.scale[j] * 0.5f) * 2.0f != t.scale[j] && std::isfinite(t.scale[j]))
        throw std::invalid_argument("BConv2d: {0,1} input domain needs output scales whose half is exact "
                                    "(channel " + std::to_string(j) + " has a subnormal scale)");
  // Output-stage parameters, padded to whole weight blocks so kernels load full vectors (one
  // loop per array with its null test hoisted, so each vectorizes: per element, as one loop,
  // they took ~8 cycles, ~1 us per run of a 512-channel layer).
  const int64_t npar = OCpad + kBlockN;
  param_row(ws.scale, t.scale, OC, npar, 1.0f, zero_one ? 0.5f : 1.0f);
  param_row(ws.bias, t.bias, OC, npar, 0.0f, 1.0f);
  param_row(ws.thr, t.out_threshold, OC, npar, 0.0f, 1.0f);
  flip_row(ws.flipmask, t.out_flip, OC, npar);
  // base[class][oc] = K minus the weight sums of the taps that class pads.
  axis_classes(OH, g_.stride_h, g_.pad_h, KH, in_h, ws.hcls, ws.hrange);
  axis_classes(OW, g_.stride_w, g_.pad_w, KW, in_w, ws.wcls, ws.wrange);
  // With prefix sums P over taps: (sum of the padded taps) = total - (sum of the valid
  // rectangle), so base = K - P[KH][KW] + rect; padded channels (oc >= OC) stay 0.
  const int32_t* pre = tap_prefix_;
  // Row and column 0 of the prefix (empty rectangles) are zeros, not stored.
  if (pre) std::fill_n(ws.zeros, OCpad, 0);
  auto prow = [&](int h, int w) -> const int32_t* {
    return h == 0 || w == 0 ? ws.zeros : pre + (static_cast<int64_t>(h - 1) * KW + (w - 1)) * OCpad;
  };
  for (int hc = 0; hc < nhc; ++hc)
    for (int wc = 0; wc < nwc; ++wc) {
      int32_t* row = ws.base + (static_cast<int64_t>(hc) * nwc + wc) * OCpad;
      if (!pre) {  // no padding: every window is whole (one class), nothing to subtract
        // {0, 1}: rect = tot, so K - tot + 2 rect = K + tot (the identity above).
        for (int64_t oc = 0; oc < OCpad; ++oc)
          row[oc] = oc < OC ? (zero_one ? K + wtot_[static_cast<size_t>(oc)] : K) : 0;
        continue;
      }
      const int hlo = ws.hrange[2 * hc], hhi = ws.hrange[2 * hc + 1];
      const int wlo = ws.wrange[2 * wc], whi = ws.wrange[2 * wc + 1];
      const int32_t *tot = prow(KH, KW), *p11 = prow(hhi, whi), *p01 = prow(hlo, whi), *p10 = prow(hhi, wlo),
                    *p00 = prow(hlo, wlo);
      base_row(row, tot, p11, p01, p10, p00, OC, OCpad, K, zero_one ? 2 : 1);  // rect_mul: see the {0, 1} identity
    }
  std::fill(ws.base + static_cast<int64_t>(nhc) * nwc * OCpad,
            ws.base + static_cast<int64_t>(nhc) * nwc * OCpad + kBlockN, 0);
  // Class of every output row, so a tile finds its rows' base vectors without divisions.
  // Stored as the class's offset in the base / ithr tables (class * OCpad, which fits the
  // int32 the tables are indexed by): the per-tile row setup then adds instead of multiplying
  // in 64 bits (which the baseline-ISA vectoriser emulates with pmuludq sequences: about a
  // third of a small-K tile's driver time).
  {
    // Row by row (row_classes): a plain loop over all pixels reloaded OW and hcls after every
    // store (the lambdas below capture OW by reference) and ran a few cycles per pixel.
    const int32_t ocp = static_cast<int32_t>(OCpad);
    for (int ow = 0; ow < OW; ++ow) ws.wcls[ow] *= ocp;
    int32_t* rc = ws.rowcls;
    const int ow_n = OW;
    for (int b = 0; b < n; ++b)
      for (int oh = 0; oh < OH; ++oh, rc += ow_n) row_classes(rc, ws.wcls, ws.hcls[oh] * nwc * ocp, ow_n);
    for (int i = 0; i < kMaxMR; ++i) ws.rowcls[M + i] = ws.rowcls[M - 1];
  }

  // Integer-threshold bit mode (see first_target): a few scalar evaluations per channel (some
  // 50-80 cycles with its table) buy an epilogue of one integer compare per 16 outputs (~0.3
  // cycles saved per output): on Zen 4 neutral at 169 output pixels, a 7% loss at 49, with
  // the AVX-512 float-rule epilogue of before 2026-12 (the default cut of 160 rows, kept by
  // every row but avx512; BKernel::int_thr_rows). With keep_int_thresholds the evaluations are
  // done once per transform (IntThrCache); each run only offsets the cuts by its classes' bases.
  bool int_thr = out_b && !t.pixel_scale && !t.residual && M >= int_thr_rows;
  for (int64_t j = 0; int_thr && j < OC; ++j)
    int_thr = std::isfinite(ws.scale[j]) && std::isfinite(ws.bias[j]);
  if (int_thr) {
    const bool relu = t.act == Activation::relu;
    const int64_t ncls = static_cast<int64_t>(nhc) * nwc;
    // The cuts of the last run with this transform (keep_int_thresholds), when this run may use
    // the object's cache (a concurrent run of the same object derives its own).
    IntThrCache* cache = ithr_cache_.get();
    int idle = 0;
    if (cache && !cache->busy.compare_exchange_strong(idle, 1, std::memory_order_acquire)) cache = nullptr;
    const void* key[4] = {t.scale, t.bias, t.out_threshold, t.out_flip};
    const bool hit = cache && cache->valid && cache->relu == relu && cache->dot_max == dot_max &&
                     std::equal(key, key + 4, cache->key);
    int32_t* const cut = cache ? cache->cut.data() : ws.cut;
    if (hit) {
      std::copy(cache->inv.begin(), cache->inv.end(), ws.inv);
    } else {
      derive_cuts(ws, OC, OCpad, dot_max, relu, cut);
      if (cache) {
        std::copy(key, key + 4, cache->key);
        std::copy(ws.inv, ws.inv + OCpad / kWordBits + 2, cache->inv.begin());
        cache->relu = relu;
        cache->dot_max = dot_max;
        cache->valid = true;
      }
    }
    // bit <=> inverted ^ (base - 2 pc < D) <=> inverted ^ (pc > floor((base - D) / 2))
    for (int64_t c = 0; c < ncls; ++c) ithr_row(ws.ithr + c * OCpad, ws.base + c * OCpad, cut, OCpad);
    if (cache) cache->busy.store(0, std::memory_order_release);
    std::fill(ws.ithr + ncls * OCpad, ws.ithr + ncls * OCpad + kBlockN, 0);
  }

  // Zero-padded copy of the input (padded pixels are 0 words = +1 bits, fixed up by base),
  // so every receptive field row is one contiguous run of KW pixels.
  const int Hp = in_h + 2 * g_.pad_h, Wp = in_w + 2 * g_.pad_w;
  const word_t* src = in;
  if (!compact_ && (g_.pad_h || g_.pad_w)) {
    word_t* d = ws.padded;
    const int64_t side = static_cast<int64_t>(g_.pad_w) * W, inner = static_cast<int64_t>(in_w) * W;
    for (int b = 0; b < n; ++b)
      for (int y = 0; y < Hp; ++y) {
        const int iy = y - g_.pad_h;
        if (iy < 0 || iy >= in_h) {
          d = std::fill_n(d, Wp * W, word_t{0});
          continue;
        }
        d = std::fill_n(d, side, word_t{0});
        const word_t* s = in + (static_cast<int64_t>(b) * in_h + iy) * inner;
        d = std::copy(s, s + inner, d);
        d = std::fill_n(d, side, word_t{0});
      }
    src = ws.padded;
  }
  // Where each output row's receptive field starts in src (no divisions in the tile loop);
  // compact mode sets its own offsets below.
  if (!compact_) {
    int64_t* ro = ws.rowoff;
    const int64_t step = static_cast<int64_t>(g_.stride_w) * W;
    const int ow_n = OW;
    for (int b = 0; b < n; ++b)
      for (int oh = 0; oh < OH; ++oh, ro += ow_n)
        row_offsets(ro, (static_cast<int64_t>(b) * Hp + static_cast<int64_t>(oh) * g_.stride_h) * Wp * W, step, ow_n);
    for (int i = 0; i < kMaxMR; ++i) ws.rowoff[M + i] = ws.rowoff[M - 1];
  }
  // A row of A: KH segments of KW*W words, one padded-input row apart (one segment when the
  // kernel spans the whole padded width, e.g. 1x1 convs on 1x1 maps).
  int64_t seg_len = static_cast<int64_t>(KW) * W, seg_stride = static_cast<int64_t>(Wp) * W;
  int nseg = KH;
  if (seg_stride == seg_len || KH == 1) {
    seg_len *= KH;
    nseg = 1;
  }
  if (compact_) {
    // Gather each receptive field's T*C bits into kc_ words; padded taps stay 0 (+1 bits,
    // fixed up by base like the zero-padded copy's).
    const int64_t kc = kc_;
    word_t* cols = ws.cols;
    // Tap by tap, so each inner loop is a branch-free strided OR over the output pixels whose
    // tap is inside the input.
    auto gather = [&](int64_t r0, int64_t r1, int) {
      const int sw = g_.stride_w;
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t b = r / OH, oh = r % OH;
        word_t* row0 = cols + r * OW * kc;
        std::fill_n(row0, OW * kc, word_t{0});
        for (int kh = 0; kh < KH; ++kh) {
          const int64_t ih = oh * g_.stride_h - g_.pad_h + kh;
          if (ih < 0 || ih >= in_h) continue;
          const word_t* line = in + (b * in_h + ih) * in_w * W;
          for (int kx = 0; kx < KW; ++kx) {
            int lo, hi;  // output columns whose tap kx is inside the input row
            tap_range_inv(OW, sw, g_.pad_w, kx, in_w, &lo, &hi);
            const int64_t off = static_cast<int64_t>(kh * KW + kx) * C;
            const int64_t i = off / kWordBits;
            const int sh = static_cast<int>(off % kWordBits);
            word_t* dst = row0 + i;
            const word_t* sp = line + (static_cast<int64_t>(lo) * sw - g_.pad_w + kx) * W;
            const int64_t sstep = static_cast<int64_t>(sw) * W;
            if (W == 1 && sh == 0) {
              for (int ow = lo; ow < hi; ++ow, sp += sstep) dst[ow * kc] |= sp[0];
            } else if (W == 1 && i + 1 < kc) {
              for (int ow = lo; ow < hi; ++ow, sp += sstep) {
                dst[ow * kc] |= sp[0] << sh;
                dst[ow * kc + 1] |= sp[0] >> (kWordBits - sh);
              }
            } else {
              for (int ow = lo; ow < hi; ++ow, sp += sstep) or_bits(row0 + ow * kc, kc, off, sp, W);
            }
          }
        }
      }
    };
    // About 16K words gathered per task before another thread is worth waking.
    const int64_t nrows = static_cast<int64_t>(n) * OH;
    const int64_t per_row = std::max<int64_t>(1, OW * T * W);
    const int64_t grain = std::max<int64_t>(1, (16 * 1024) / per_row);
    if (KW == 3 && g_.stride_w == 1 && (C == 16 || C == 32)) {
      if (C == 16) {
        const RunGather<16> rg{in, in_h, in_w, KH, g_.stride_h, g_.pad_h, g_.pad_w, OH, OW, kc, cols};
        pool.parallel_for(nrows, [&rg](int64_t b, int64_t e, int) { rg.rows(b, e); }, grain);
      } else {
        const RunGather<32> rg{in, in_h, in_w, KH, g_.stride_h, g_.pad_h, g_.pad_w, OH, OW, kc, cols};
        pool.parallel_for(nrows, [&rg](int64_t b, int64_t e, int) { rg.rows(b, e); }, grain);
      }
    } else {
      pool.parallel_for(nrows, [&gather](int64_t b, int64_t e, int t) { gather(b, e, t); }, grain);
    }
    src = cols;
    // kc and M copied: the lambdas above take kc's address, so the stores could alias it.
    const int64_t kc_words = kc, last = M - 1;
    for (int64_t m = 0; m < M + kMaxMR; ++m) ws.rowoff[m] = std::min(m, last) * kc_words;
    seg_len = kc;
    seg_stride = kc;
    nseg = 1;
  }

  const int mr = kern.mr, nb = kern.nb;
  const int64_t P = (M + mr - 1) / mr;

  // Tile arguments are filled in two steps: the channel fields once per channel tile, the row
  // fields per panel (small-K layers run thousands of tiles, each only ~100 cycles of work).
  auto channel_args = [&](int64_t n0, TileArgs& a) {
    a.seg_len = seg_len;
    a.seg_stride = seg_stride;
    a.nseg = nseg;
    a.b = packed_ + (n0 / kBlockN) * kc_ * kBlockN + n0 % kBlockN;
    a.b_ks = kBlockN;
    a.kw = kc_;
    a.cols = static_cast<int>(std::min<int64_t>(nb, OC - n0));
    a.scale = ws.scale + n0;
    a.bias = ws.bias + n0;
    a.thr = ws.thr + n0;
    a.flipmask = ws.flipmask + n0;
    a.relu = t.act == Activation::relu;
    a.res = nullptr;
    a.res_rs = t.residual_ld;
    a.res_relu = t.residual_act == Activation::relu;
    a.out_rs = out_f ? OC : OCW;
    a.bit0 = out_f ? 0 : static_cast<int>(n0 % kWordBits);
    a.out_f = nullptr;
    a.out_b = nullptr;
    a.ithr[0] = nullptr;
    a.inv = ws.inv + n0 / kWordBits;
    a.inv_bit0 = static_cast<int>(n0 % kWordBits);
    a.nblocks = 1;
    a.b_bs = kc_ * kBlockN;
    a.b32 = lane32 ? packed32_ + n0 : nullptr;
    if (klanes) {
      a.b = packed_kl_.data() + n0 / detail::kKlanesChannels * detail::kklanes_group_words(kl_nseg_, kl_len_);
      a.nseg = kl_nseg_;
      a.seg_len = kl_len_;
    }
  };
  auto set_rows = [&](int64_t m0, int rows_mr, int64_t n0, TileArgs& a) {
    for (int i = 0; i < rows_mr; ++i) {
      a.a[i] = src + ws.rowoff[m0 + i];
      a.base[i] = ws.base + ws.rowcls[m0 + i] + n0;  // rowcls: class * OCpad
      if (int_thr) a.ithr[i] = ws.ithr + ws.rowcls[m0 + i] + n0;
    }
    a.rows = static_cast<int>(std::min<int64_t>(rows_mr, M - m0));
    a.pixel_scale = t.pixel_scale ? t.pixel_scale + m0 : nullptr;
    a.res = t.residual ? t.residual + m0 * t.residual_ld + n0 : nullptr;
    if (a.res) {
      // The residual (another layer's output, often out of cache) is read only by the short
      // output stage, which cannot hide its misses: fetch a later panel's rows now, while
      // this tile's K loop runs.
      const int64_t ahead = m0 + kResidualAhead * mr;
      const int64_t bytes = static_cast<int64_t>(a.cols) * static_cast<int64_t>(sizeof(float));
      for (int i = 0; i < mr && ahead + i < M; ++i) {
        const char* r = reinterpret_cast<const char*>(t.residual + (ahead + i) * t.residual_ld + n0);
        for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(r + b);
      }
    }
    if (out_f) a.out_f = out_f + m0 * OC + n0;
    else a.out_b = out_b + m0 * OCW + n0 / kWordBits;
  };
  auto run_tile = [&](int64_t p, int64_t n0, TileArgs& a) {
    const int64_t m0 = p * mr;
    if (klanes && M - m0 < mr) {
      // The short last panel on the block layout (the K order is the same; the tail tile reads
      // the kl segments, which are the driver's or a finer split of them).
      TileArgs f = a;
      f.b = packed_ + (n0 / kBlockN) * kc_ * kBlockN + n0 % kBlockN;
      for (int64_t r = m0; r < M; r += tail.mr) {
        set_rows(r, tail.mr, n0, f);
        tail.tile(f);
      }
      return;
    }
    set_rows(m0, mr, n0, a);
    kern.tile(a);
  };

  // Panels [p0, p1) x channels [n_lo, n_hi): blocks of panels whose A rows (about
  // mr * kc_ words each) stay in L2 while every weight block (kc_ x nb words, L1-sized) sweeps
  // over them. Within a row the channel tiles run in increasing order, which the bit-output
  // OR-merge relies on.
  const int64_t panel_bytes = mr * kc_ * static_cast<int64_t>(sizeof(word_t));
  const int64_t PB = std::max<int64_t>(1, (192 * 1024) / panel_bytes);
  // When all weight blocks of the layer stay cache-resident together, one multi-block tile
  // call covers all channels of a panel: the per-tile setup (row pointers, padding rows, the
  // call) is paid once per panel. Measured on Zen 4 it wins up to ResNet-18 layer4's 295 KB of
  // weights (read from L2; AVX-512 parts have >= 1 MiB of it), e.g. 3x3 256->256 on 14x14
  // 105 -> 102 us; larger weights (fc layers) keep the block-outer order that reads them once.
  const bool multi =
      kern.multi_block && (lane32 || kc_ * OCpad * static_cast<int64_t>(sizeof(word_t)) <= 320 * 1024);
  auto do_panels = [&](int64_t p0, int64_t p1, int64_t n_lo, int64_t n_hi) {
    if (multi) {
      TileArgs a{};
      channel_args(n_lo, a);
      a.cols = static_cast<int>(n_hi - n_lo);
      a.nblocks = static_cast<int>((n_hi - n_lo + kBlockN - 1) / kBlockN);
      for (int64_t p = p0; p < p1; ++p) run_tile(p, n_lo, a);
      return;
    }
    for (int64_t pb = p0; pb < p1; pb += PB) {
      const int64_t pe = std::min(p1, pb + PB);
      for (int64_t n0 = n_lo; n0 < n_hi; n0 += nb) {
        TileArgs a{};
        channel_args(n0, a);
        for (int64_t p = pb; p < pe; ++p) run_tile(p, n0, a);
      }
    }
  };

  // Finished rows of panels [p0, p1) to the caller's hook.
  auto done = [&](int64_t p0, int64_t p1) {
    if (rows_done) (*rows_done)(p0 * mr, std::min(M, p1 * mr));
  };
  const int nt = pool.num_threads();
  if (nt == 1) {
    if (!rows_done) {
      do_panels(0, P, 0, OC);
      return;
    }
    // About 32 KB of output per hook call, so the hook reads rows still in L1/L2.
    const int64_t step = std::max<int64_t>(1, (8 * 1024) / (static_cast<int64_t>(OC) * mr));
    for (int64_t p = 0; p < P; p += step) {
      do_panels(p, std::min(P, p + step), 0, OC);
      done(p, std::min(P, p + step));
    }
    return;
  }
  // Threads claim work units from a shared counter rather than taking fixed shares, so a
  // thread that starts late (a busy or shared core) leaves its share to the others instead of
  // making everyone wait for it.
  const int64_t chunks = (OC + kWordBits - 1) / kWordBits;
  const bool by_rows = P >= 2 * nt;
  // Rows: runs of panels (about 8 units per thread), each over every channel in increasing
  // order (bit mode ORs neighbouring tiles into one word). Few rows (e.g. a batch-1 linear
  // layer): one panel x 64 channels (whole output words, never shared between units).
  const int64_t run = by_rows ? std::max<int64_t>(1, P / (8 * nt)) : 1;
  const int64_t units = by_rows ? (P + run - 1) / run : P * chunks;
  std::atomic<int64_t> next{0};
  auto claim = [&](int64_t, int64_t, int) {
    for (int64_t u = next.fetch_add(1, std::memory_order_relaxed); u < units;
         u = next.fetch_add(1, std::memory_order_relaxed)) {
      if (by_rows) {
        do_panels(u * run, std::min(P, (u + 1) * run), 0, OC);
        done(u * run, std::min(P, (u + 1) * run));
      } else {
        const int64_t c = u / P, p = u % P;
        do_panels(p, p + 1, c * kWordBits, std::min<int64_t>(OC, (c + 1) * kWordBits));
      }
    }
  };
  parallel(pool, std::min<int64_t>(nt, units), claim);
  if (!by_rows) done(0, P);
}

}  // namespace hbn

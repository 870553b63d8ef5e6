// QConv2d (conv_q8's kernels) on every qgemm row against a naive reference of the definition:
// the int32 accumulators bit-exactly, and the float and packed-bit outputs (every row applies
// the same transform to the same integers, so those are bit-exact too; the bits also against
// thresholds equal to the outputs, infinite and NaN). Random and edge shapes:
// odd IC, K off every vector width, padding, stride, 1x1, linear (M = 1), extreme values
// (q = 0 / 255 with w = +-127), batch > 1, 1 and 3 threads, and the float quantizer.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "hbn/isa.h"
#include "peak/peak.h"
#include "qconv/qconv.h"
#include "qconv/qgemm.h"
#include "tests/check.h"

using namespace hbn;

namespace {

using hbn_test::g_failures;

struct AlignedBuf {
  explicit AlignedBuf(size_t bytes)
      : p(std::aligned_alloc(kAlignment, (bytes + kAlignment) / kAlignment * kAlignment)) {}
  ~AlignedBuf() { std::free(p); }
  void* p;
};

struct Case {
  int n, h, w, ic, oc, kh, kw, stride, pad;
  const char* what;
};

// How values are drawn: random, or the worst cases for int32 range and int16 saturation.
enum class Fill { random, max_pos, max_neg, alternating };

// acc[m][oc] = sum (q - z) * w over the receptive field, padded taps q = z (a real 0).
std::vector<int32_t> reference(const Case& c, const std::vector<uint8_t>& q, const std::vector<int8_t>& w, int z) {
  const ConvGeometry g{c.ic, c.oc, c.kh, c.kw, c.stride, c.stride, c.pad, c.pad};
  const int oh = g.out_h(c.h), ow = g.out_w(c.w);
  std::vector<int32_t> acc(static_cast<size_t>(c.n) * oh * ow * c.oc);
  for (int b = 0; b < c.n; ++b)
    for (int oy = 0; oy < oh; ++oy)
      for (int ox = 0; ox < ow; ++ox)
        for (int o = 0; o < c.oc; ++o) {
          int64_t s = 0;
          for (int ky = 0; ky < c.kh; ++ky)
            for (int kx = 0; kx < c.kw; ++kx) {
              const int y = oy * c.stride - c.pad + ky, x = ox * c.stride - c.pad + kx;
              if (y < 0 || y >= c.h || x < 0 || x >= c.w) continue;
              for (int i = 0; i < c.ic; ++i)
                s += int64_t(int(q[((size_t(b) * c.h + y) * c.w + x) * c.ic + i]) - z) *
                     w[((size_t(o) * c.ic + i) * c.kh + ky) * c.kw + kx];
            }
          acc[((size_t(b) * oh + oy) * ow + ox) * c.oc + o] = static_cast<int32_t>(s);
        }
  return acc;
}

void check_case(const Case& c, Fill fill, int z, std::mt19937& rng) {
  const ConvGeometry g{c.ic, c.oc, c.kh, c.kw, c.stride, c.stride, c.pad, c.pad};
  const int oh = g.out_h(c.h), ow = g.out_w(c.w);
  const int64_t M = int64_t(c.n) * oh * ow;
  std::vector<uint8_t> q(static_cast<size_t>(c.n) * c.h * c.w * c.ic);
  std::vector<int8_t> w(static_cast<size_t>(c.oc) * c.ic * c.kh * c.kw);
  std::uniform_int_distribution<int> dq(0, 255), dw(-127, 127);
  for (size_t i = 0; i < q.size(); ++i)
    q[i] = fill == Fill::random ? uint8_t(dq(rng)) : fill == Fill::alternating ? uint8_t(i % 2 ? 255 : 0) : 255;
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = fill == Fill::random ? int8_t(dw(rng)) : fill == Fill::max_neg ? int8_t(-127) : int8_t(127);
  const std::vector<int32_t> ref = reference(c, q, w, z);

  // The float output stage and the bit output, from the reference accumulators.
  std::uniform_real_distribution<float> df(-1.0f, 1.0f);
  std::vector<float> scale(c.oc), bias(c.oc), thr(c.oc);
  std::vector<uint8_t> flip(c.oc);
  for (int o = 0; o < c.oc; ++o) {
    scale[o] = 1e-4f * (1.0f + df(rng));
    bias[o] = df(rng);
    thr[o] = 0.1f * df(rng);
    flip[o] = uint8_t(o % 3 == 0);
  }
  OutputTransform t;
  t.scale = scale.data();
  t.bias = bias.data();
  t.act = Activation::relu;
  std::vector<float> yref(ref.size());
  const int64_t words = words_for(c.oc);
  std::vector<word_t> bref(static_cast<size_t>(M * words), 0);
  OutputTransform tb = t;
  tb.out_threshold = thr.data();
  tb.out_flip = flip.data();
  for (int64_t m = 0; m < M; ++m)
    for (int o = 0; o < c.oc; ++o) {
      const float y = apply_transform(t, static_cast<float>(ref[m * c.oc + o]), m, o);
      yref[m * c.oc + o] = y;
      if (threshold_bit(tb, y, o)) bref[m * words + o / 64] |= word_t(1) << (o % 64);
    }

  OutputTransform t_plain;
  t_plain.scale = scale.data();
  std::vector<float> yref_plain(ref.size());
  for (int64_t m = 0; m < M; ++m)
    for (int o = 0; o < c.oc; ++o)
      yref_plain[m * c.oc + o] = apply_transform(t_plain, static_cast<float>(ref[m * c.oc + o]), m, o);

  QConv2d conv(g, w.data(), 1.0f, z);
  AlignedBuf ws(conv.workspace_bytes(c.n, c.h, c.w));
  ThreadPool pool1(1), pool3(3);
  hbn_test::for_each_row(qgemm::qgemm_kernels(), [&](const char* row_name) {
    for (QConv2d::Path path : {QConv2d::Path::im2col, QConv2d::Path::direct})
    for (ThreadPool* pool : {&pool1, &pool3}) {
      conv.set_path(path);
      const bool direct = conv.uses_direct(c.w);
      const std::string row_path = std::string(row_name) + (direct ? " direct" : " im2col");
      const char* row = row_path.c_str();
      std::vector<int32_t> acc(ref.size(), 0x5a5a5a5a);
      conv.run_acc(q.data(), c.n, c.h, c.w, acc.data(), ws.p, *pool);
      int bad = 0;
      for (size_t i = 0; i < acc.size(); ++i) bad += acc[i] != ref[i];
      CHECK(bad == 0, "%s fill %d z %d row %s threads %d: %d of %zu accumulators differ", c.what, int(fill), z,
            row, pool->num_threads(), bad, acc.size());
      std::vector<float> y(ref.size(), NAN);
      // Rows reported done must be final when reported, and reported at most once.
      std::vector<std::atomic<int>> reported(static_cast<size_t>(M));
      std::atomic<int> early{0}, twice{0};
      const QConv2d::RowsDone done = [&](int64_t m0, int64_t m1) {
        for (int64_t m = m0; m < m1; ++m) {
          if (reported[m]++) ++twice;
          if (std::memcmp(&y[m * c.oc], &yref[m * c.oc], sizeof(float) * c.oc) != 0) ++early;
        }
      };
      conv.run_u8(q.data(), c.n, c.h, c.w, t, y.data(), ws.p, *pool, &done);
      CHECK(std::memcmp(y.data(), yref.data(), y.size() * sizeof(float)) == 0,
            "%s row %s threads %d: float outputs differ", c.what, row, pool->num_threads());
      CHECK(early == 0 && twice == 0, "%s row %s threads %d: %d pixels reported before final, %d twice", c.what,
            row, pool->num_threads(), early.load(), twice.load());
      int64_t n_reported = 0;
      for (auto& r : reported) n_reported += r.load() > 0;
      // The direct path reports every band; im2col when one task covers all channels.
      if (direct || c.oc <= kWordBits)
        CHECK(n_reported == M, "%s row %s threads %d: %lld of %lld pixels reported done", c.what, row,
              pool->num_threads(), static_cast<long long>(n_reported), static_cast<long long>(M));
      std::vector<word_t> bits(bref.size(), ~word_t(0));
      conv.run_u8_bits(q.data(), c.n, c.h, c.w, tb, bits.data(), ws.p, *pool);
      CHECK(bits == bref, "%s row %s threads %d: bit outputs differ", c.what, row, pool->num_threads());
      // Without ReLU and bias (the output stage's other branch, negative outputs kept).
      std::vector<float> y2(ref.size(), NAN);
      conv.run_u8(q.data(), c.n, c.h, c.w, t_plain, y2.data(), ws.p, *pool);
      CHECK(std::memcmp(y2.data(), yref_plain.data(), y2.size() * sizeof(float)) == 0,
            "%s row %s threads %d: float outputs without ReLU differ", c.what, row, pool->num_threads());
    }
  });
}

// The packed-bit output stage (QKernel::store_bits) of every row against threshold_bit(
// apply_transform(acc)) element by element, on thresholds that sit on the outputs: equal to one
// pixel's output in each channel (and to ReLU's 0), +-inf and NaN (the loader rejects NaN, the
// kernels must still compare it false as threshold_bit does), random or absent flips, with and
// without ReLU / bias / scale.
void check_bits(const Case& c, int z, std::mt19937& rng) {
  const ConvGeometry g{c.ic, c.oc, c.kh, c.kw, c.stride, c.stride, c.pad, c.pad};
  const int64_t M = int64_t(c.n) * g.out_h(c.h) * g.out_w(c.w);
  std::vector<uint8_t> q(static_cast<size_t>(c.n) * c.h * c.w * c.ic);
  std::vector<int8_t> w(static_cast<size_t>(c.oc) * c.ic * c.kh * c.kw);
  std::uniform_int_distribution<int> dq(0, 255), dw(-127, 127);
  for (auto& v : q) v = uint8_t(dq(rng));
  for (auto& v : w) v = int8_t(dw(rng));
  const std::vector<int32_t> ref = reference(c, q, w, z);
  std::uniform_real_distribution<float> df(-1.0f, 1.0f);
  std::uniform_int_distribution<int64_t> dm(0, M - 1);
  std::vector<float> scale(c.oc), bias(c.oc), thr(c.oc);
  std::vector<uint8_t> flip(c.oc);
  for (int o = 0; o < c.oc; ++o) {
    scale[o] = (o % 5 == 0 ? -1e-4f : 1e-4f) * (1.0f + df(rng));
    bias[o] = 0.5f * df(rng);
  }
  QConv2d conv(g, w.data(), 1.0f, z);
  AlignedBuf ws(conv.workspace_bytes(c.n, c.h, c.w));
  ThreadPool pool1(1), pool3(3);
  const int64_t words = words_for(c.oc);
  enum Thr { on_output, zero, infinite, nan_mixed, random_thr };
  for (int variant = 0; variant < 4; ++variant)
    for (Thr tm : {on_output, zero, infinite, nan_mixed, random_thr}) {
      OutputTransform t;
      t.scale = variant == 3 ? nullptr : scale.data();
      t.bias = variant >= 2 ? nullptr : bias.data();
      t.act = variant == 0 || variant == 2 ? Activation::relu : Activation::none;
      for (int o = 0; o < c.oc; ++o) {
        const int64_t m = dm(rng);
        switch (tm) {
          case on_output: thr[o] = apply_transform(t, static_cast<float>(ref[m * c.oc + o]), m, o); break;
          case zero: thr[o] = o % 2 ? 0.0f : -0.0f; break;
          case infinite: thr[o] = o % 2 ? INFINITY : -INFINITY; break;
          case nan_mixed: thr[o] = o % 3 == 0 ? NAN : o % 3 == 1 ? INFINITY : 0.0f; break;
          case random_thr: thr[o] = 0.5f * df(rng); break;
        }
        flip[o] = uint8_t(rng() % 2);
      }
      t.out_threshold = thr.data();
      t.out_flip = tm == random_thr ? nullptr : flip.data();
      std::vector<word_t> bref(static_cast<size_t>(M * words), 0);
      int64_t ones = 0;
      for (int64_t m = 0; m < M; ++m)
        for (int o = 0; o < c.oc; ++o)
          if (threshold_bit(t, apply_transform(t, static_cast<float>(ref[m * c.oc + o]), m, o), o)) {
            bref[m * words + o / 64] |= word_t(1) << (o % 64);
            ++ones;
          }
      hbn_test::for_each_row(qgemm::qgemm_kernels(), [&](const char* row_name) {
        for (QConv2d::Path path : {QConv2d::Path::im2col, QConv2d::Path::direct})
        for (ThreadPool* pool : {&pool1, &pool3}) {
          conv.set_path(path);
          const std::string row_path = std::string(row_name) + (conv.uses_direct(c.w) ? " direct" : " im2col");
          const char* row = row_path.c_str();
          std::vector<word_t> bits(bref.size(), ~word_t(0));
          conv.run_u8_bits(q.data(), c.n, c.h, c.w, t, bits.data(), ws.p, *pool);
          CHECK(bits == bref, "%s z %d variant %d thresholds %d row %s threads %d: bit outputs differ (%lld ones)",
                c.what, z, variant, int(tm), row, pool->num_threads(), static_cast<long long>(ones));
        }
      });
    }
}

// quantize_rows against the definition computed with std::nearbyint, and run() (float input)
// equal to quantize + run_u8.
void check_quantize(std::mt19937& rng) {
  std::vector<float> x = hbn_test::random_floats(4099, rng, -3.0f, 3.0f);
  x[0] = 0.5f; x[1] = 1.5f; x[2] = 2.5f; x[3] = -0.5f; x[4] = -1.5f;  // ties: half to even
  x[5] = NAN; x[6] = INFINITY; x[7] = -INFINITY; x[8] = 1e30f; x[9] = -1e30f; x[10] = -0.0f;
  hbn_test::for_each_row(qgemm::qgemm_kernels(), [&](const char* row) {
  for (float s : {1.0f, 0.02f, 0.0078125f, 3.0f})
    for (int z : {0, 1, 128, 255}) {
      std::vector<uint8_t> q(x.size());
      quantize_rows(x.data(), static_cast<int64_t>(x.size()), s, z, q.data());
      int bad = 0;
      for (size_t i = 0; i < x.size(); ++i) {
        int want = 0;
        if (!std::isnan(x[i])) {
          const float r = std::nearbyint(x[i] / s);
          const double v = double(r) + z;
          want = v < 0 ? 0 : v > 255 ? 255 : int(v);
        }
        bad += q[i] != want;
      }
      CHECK(bad == 0, "quantize_rows row %s scale %g zero %d: %d values differ", row, double(s), z, bad);
    }
  });
  // run() = quantize_rows + run_u8.
  const Case c{2, 9, 8, 5, 21, 3, 3, 2, 1, "float input"};
  const ConvGeometry g{c.ic, c.oc, c.kh, c.kw, c.stride, c.stride, c.pad, c.pad};
  std::vector<float> xin = hbn_test::random_floats(size_t(c.n) * c.h * c.w * c.ic, rng, -2.0f, 2.0f);
  std::vector<int8_t> w(size_t(c.oc) * c.ic * c.kh * c.kw);
  std::uniform_int_distribution<int> dw(-127, 127);
  for (auto& v : w) v = int8_t(dw(rng));
  const float s = 0.015f;
  const int z = 131;
  std::vector<uint8_t> q(xin.size());
  quantize_rows(xin.data(), int64_t(xin.size()), s, z, q.data());
  QConv2d conv(g, w.data(), s, z);
  AlignedBuf ws(conv.workspace_bytes(c.n, c.h, c.w));
  const int64_t M = int64_t(c.n) * g.out_h(c.h) * g.out_w(c.w);
  std::vector<float> a(M * c.oc), b(M * c.oc);
  std::vector<float> scale(c.oc, 0.001f);
  OutputTransform t;
  t.scale = scale.data();
  conv.run(xin.data(), c.n, c.h, c.w, t, a.data(), ws.p, default_pool());
  conv.run_u8(q.data(), c.n, c.h, c.w, t, b.data(), ws.p, default_pool());
  CHECK(a == b, "run (float input) differs from quantize_rows + run_u8");
}

}  // namespace

int main() {
  std::mt19937 rng(1234);
  check_quantize(rng);
  const Case cases[] = {
      {1, 7, 6, 1, 5, 3, 3, 1, 1, "ic1 3x3 pad1"},
      {2, 9, 11, 3, 17, 5, 5, 2, 2, "ic3 5x5 s2 p2 batch2"},
      {1, 8, 8, 5, 33, 3, 3, 1, 0, "ic5 3x3"},
      {1, 6, 7, 17, 16, 2, 3, 1, 1, "ic17 2x3"},
      {1, 5, 5, 16, 64, 1, 1, 1, 0, "1x1 in place"},
      {3, 4, 4, 6, 70, 1, 1, 2, 0, "1x1 s2 ic6"},
      {1, 1, 1, 301, 40, 1, 1, 1, 0, "linear K=301"},
      {1, 1, 1, 1024, 130, 1, 1, 1, 0, "linear K=1024"},
      {4, 1, 1, 67, 10, 1, 1, 1, 0, "linear batch4"},
      {1, 31, 29, 3, 24, 11, 11, 4, 2, "alexnet-like 11x11 s4"},
      {1, 23, 23, 3, 16, 7, 7, 2, 3, "resnet-like 7x7 s2"},
      {2, 12, 12, 13, 50, 3, 3, 1, 1, "many tiles"},
      // Direct-path edges: output rows off every tile width (1, 5, 13, 25, 29), narrower than
      // a tile, stride 3, KW * IC a multiple of 4 and not, more than 4 panels, pads > 1.
      {1, 9, 3, 5, 20, 3, 3, 1, 1, "direct ow3 ic5"},
      {2, 15, 28, 7, 40, 5, 5, 1, 2, "direct ic7 5x5 ow28"},
      {1, 17, 57, 4, 100, 3, 3, 2, 1, "direct ic4 ow29 oc100"},
      {1, 19, 41, 2, 33, 5, 3, 3, 2, "direct 5x3 s3 ow14"},
      {1, 13, 11, 3, 16, 7, 7, 1, 3, "direct 7x7 ow11"},
      {1, 8, 2, 1, 7, 2, 2, 1, 0, "direct ow1"},
      {1, 29, 29, 1, 64, 15, 15, 3, 0, "sketch-like 15x15 s3"},
      {1, 61, 61, 3, 96, 7, 7, 2, 0, "squeezenet-like oc96 ow28"},
  };
  for (const Case& c : cases)
    for (int z : {0, 128, 255}) check_case(c, Fill::random, z, rng);
  // The direct path's k order: kernel rows split into a body and a tail where that executes
  // fewer groups (7x7x3: 35 + 2 instead of 42), padded to 4 where not (one kernel row; 3x3 on 1
  // or 5 channels: as many groups either way), neither for whole groups (3x3x4).
  {
    struct Tail { int ic, kh, kw; int64_t tgroups, dk4; };
    for (const Tail& e : {Tail{3, 7, 7, 2, 148}, Tail{3, 11, 11, 3, 364}, Tail{3, 3, 3, 1, 28}, Tail{1, 5, 5, 2, 28},
                          Tail{3, 1, 3, 0, 12}, Tail{1, 3, 3, 0, 12}, Tail{5, 3, 3, 0, 48}, Tail{4, 3, 3, 0, 36}}) {
      const ConvGeometry g{e.ic, 16, e.kh, e.kw, 1, 1, 0, 0};
      std::vector<int8_t> w(static_cast<size_t>(16 * e.ic * e.kh * e.kw), 1);
      const QConv2d conv(g, w.data(), 1.0f, 0);
      CHECK(conv.direct_tail_groups() == e.tgroups && conv.direct_k4() == e.dk4,
            "%dx%dx%d: direct tail groups %lld, k4 %lld (want %lld, %lld)", e.kh, e.kw, e.ic,
            static_cast<long long>(conv.direct_tail_groups()), static_cast<long long>(conv.direct_k4()),
            static_cast<long long>(e.tgroups), static_cast<long long>(e.dk4));
    }
  }
  // A sweep of the direct path's edges: every output width 1-29 (off every tile height),
  // strides 1-4, pads 0-3, channels 1, 3, 4, 5, 7, 8, kernels 2x2 to 7x7 and 5x3 / 3x5 (kernel
  // rows split into a body and a tail (qgemm::QRuns) or padded to 4, or a multiple of 4), OC
  // off 16 and 32.
  {
    const int ics[] = {1, 3, 4, 5, 7, 8}, khs[] = {3, 5, 7, 2, 5, 3}, kws[] = {3, 5, 7, 2, 3, 5};
    std::vector<std::string> names;
    names.reserve(29);
    for (int ow = 1; ow <= 29; ++ow) {
      const int s = 1 + ow % 4, kh = khs[ow % 6], kw = kws[ow % 6], ic = ics[(ow / 2) % 6];
      const int pad = std::min(ow % 4, (std::min(kh, kw) - 1) / 2 + 1);
      const int w = (ow - 1) * s + kw - 2 * pad, h = kh + s + 1 - 2 * pad;
      if (w < 1 || h < 1) continue;
      names.push_back("sweep ow" + std::to_string(ow) + " s" + std::to_string(s) + " p" + std::to_string(pad) +
                      " ic" + std::to_string(ic) + " " + std::to_string(kh) + "x" + std::to_string(kw));
      const Case c{1 + ow % 2, h, w, ic, 1 + (ow * 13) % 70, kh, kw, s, pad, names.back().c_str()};
      check_case(c, Fill::random, ow % 2 ? 0 : 201, rng);
    }
  }
  // Bit outputs: OC off 16 and 64 (1, 15, 17, 63, 65, 100), in place, linear, batch > 1.
  const Case bit_cases[] = {
      {1, 6, 5, 3, 1, 3, 3, 1, 1, "bits oc1"},
      {2, 7, 7, 3, 15, 3, 3, 2, 1, "bits oc15 batch2"},
      {1, 9, 8, 4, 17, 2, 2, 1, 0, "bits oc17"},
      {1, 5, 7, 8, 63, 1, 1, 1, 0, "bits oc63 in place"},
      {1, 6, 6, 5, 65, 3, 3, 1, 1, "bits oc65"},
      {3, 1, 1, 37, 100, 1, 1, 1, 0, "bits linear oc100 batch3"},
      {1, 19, 17, 3, 96, 7, 7, 2, 0, "bits squeezenet-like 7x7 s2 oc96"},
  };
  for (const Case& c : bit_cases)
    for (int z : {0, 200}) check_bits(c, z, rng);
  // Worst-case sums: q = 255 (or alternating 0/255) with w = +-127 everywhere, zero point 0 so
  // nothing cancels: 255 * 127 * K, including K near kQMaxK (int32 must stay exact).
  const Case extreme[] = {
      {1, 3, 3, 64, 20, 3, 3, 1, 1, "extreme 3x3x64"},
      {1, 1, 1, 65536, 17, 1, 1, 1, 0, "extreme K=65536"},
      {1, 1, 1, 65533, 3, 1, 1, 1, 0, "extreme K=65533"},
  };
  for (const Case& c : extreme)
    for (Fill f : {Fill::max_pos, Fill::max_neg, Fill::alternating})
      for (int z : {0, 255}) check_case(c, f, z, rng);
  // The int8 peak loop of every path runs and reports a positive rate.
  for (const std::string& path : hbn_test::supported_paths())
    CHECK(peak_int8_macs(path, 0.005) > 0.0, "peak_int8 path=%s", path.c_str());
  return hbn_test::finish("test_qconv");
}

// Padding larger than the kernel (PyTorch accepts any padding >= 0): windows that lie wholly in
// the padding, whole output rows and columns of pure padding. Every compiled path of each conv
// kind against its scalar reference: BConv2d (float, bit and integer-threshold bit outputs;
// AVX2 in both formulations), Conv2dF32 and WBConv2d (im2col / direct, every sign strategy);
// the references themselves against an independent conv of an explicitly zero-padded input.
// Named cases (the issue-11 layer, 1x1 pad 3, 3x3 pad 5, each BConv2d gather mode) plus a
// seeded sweep of padding 0..2k+1 with asymmetric h/w, strides 1-3 and odd channel counts.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "bconv/bconv.h"
#include "bconv/bconv_kernels.h"
#include "fconv/conv_f32.h"
#include "wbconv/wbconv.h"
#include "hbn/isa.h"
#include "tests/check.h"
#include "tests/conv_case.h"
#include "bitpack/binarize.h"

using namespace hbn;
using hbn_test::ConvCase;
using hbn_test::g_failures;

namespace {

std::vector<word_t> random_bits(std::mt19937& rng, int64_t groups, int channels) {
  const int64_t words = words_for(channels);
  std::vector<word_t> v(static_cast<size_t>(groups * words));
  const word_t tail = channels % 64 ? (word_t{1} << (channels % 64)) - 1 : ~word_t{0};
  std::uniform_int_distribution<word_t> d;
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t i = 0; i < words; ++i) v[g * words + i] = d(rng) & (i == words - 1 ? tail : ~word_t{0});
  return v;
}

void report(const char* what, const std::string& isa, const ConvCase& c, const char* mode) {
  CHECK(false, "%s isa=%s %s ic=%d oc=%d k=%dx%d s=%dx%d p=%dx%d n=%d %dx%d", what, isa.c_str(), mode, c.ic,
        c.oc, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.n, c.h, c.w);
}

// Independent of the references' bounds tests: the input copied into an explicitly padded
// tensor (padding value 0, the binarized-zero of FullBin and the float zero alike), then a
// plain valid conv of it. x_at(b, ih, iw, c) gives the unpadded input.
template <class X, class Wt>
std::vector<double> padded_conv(const ConvCase& c, X x_at, Wt w_at) {
  const int hp = c.h + 2 * c.ph, wp = c.w + 2 * c.pw;
  std::vector<double> xp(static_cast<size_t>(c.n) * hp * wp * c.ic, 0.0);
  for (int b = 0; b < c.n; ++b)
    for (int y = 0; y < c.h; ++y)
      for (int x = 0; x < c.w; ++x)
        for (int ch = 0; ch < c.ic; ++ch)
          xp[((static_cast<size_t>(b) * hp + y + c.ph) * wp + x + c.pw) * c.ic + ch] = x_at(b, y, x, ch);
  const ConvGeometry g = c.geometry();
  const int oh = g.out_h(c.h), ow = g.out_w(c.w);
  std::vector<double> out(static_cast<size_t>(c.n) * oh * ow * c.oc, 0.0);
  for (int b = 0; b < c.n; ++b)
    for (int y = 0; y < oh; ++y)
      for (int x = 0; x < ow; ++x)
        for (int o = 0; o < c.oc; ++o) {
          double s = 0;
          for (int kh = 0; kh < c.kh; ++kh)
            for (int kw = 0; kw < c.kw; ++kw)
              for (int ch = 0; ch < c.ic; ++ch)
                s += xp[((static_cast<size_t>(b) * hp + y * c.sh + kh) * wp + x * c.sw + kw) * c.ic + ch] *
                     w_at(o, ch, kh, kw);
          out[((static_cast<size_t>(b) * oh + y) * ow + x) * c.oc + o] = s;
        }
  return out;
}

bool small(const ConvCase& c) {
  const ConvGeometry g = c.geometry();
  return static_cast<int64_t>(c.n) * g.out_h(c.h) * g.out_w(c.w) * c.oc * c.kh * c.kw * c.ic < 2000000;
}

void check_bconv(const ConvCase& c, std::mt19937& rng, ThreadPool& pool1, ThreadPool& pool2) {
  const ConvGeometry g = c.geometry();
  const int OH = g.out_h(c.h), OW = g.out_w(c.w);
  const int64_t M = static_cast<int64_t>(c.n) * OH * OW, OCW = words_for(c.oc), W = words_for(c.ic);
  const auto x = random_bits(rng, static_cast<int64_t>(c.n) * c.h * c.w, c.ic);
  const auto wt = random_bits(rng, static_cast<int64_t>(c.oc) * c.kh * c.kw, c.ic);
  std::vector<int32_t> ref(static_cast<size_t>(M * c.oc));
  bconv2d_reference(g, x.data(), c.n, c.h, c.w, wt.data(), ref.data());
  if (small(c)) {
    auto sgn = [](const std::vector<word_t>& v, int64_t base, int ch) {
      return ((v[base + ch / 64] >> (ch % 64)) & 1) ? -1.0 : 1.0;
    };
    const auto want = padded_conv(
        c, [&](int b, int y, int xx, int ch) { return sgn(x, ((static_cast<int64_t>(b) * c.h + y) * c.w + xx) * W, ch); },
        [&](int o, int ch, int kh, int kw) { return sgn(wt, ((static_cast<int64_t>(o) * c.kh + kh) * c.kw + kw) * W, ch); });
    bool ok = true;
    for (size_t i = 0; i < ref.size() && ok; ++i) ok = ref[i] == want[i];
    if (!ok) report("bconv2d_reference vs padded +-1/0 conv", "scalar", c, "");
  }
  // Float output with scale/bias/ReLU, bit output, and the integer-threshold bit path (no
  // pixel scale; taken from BKernel::int_thr_rows output rows: 160, 256 on avx512).
  const hbn_test::RandomTransforms tr(c.oc, rng, 0.2f, 2.0f, 2.0f);
  const OutputTransform &plain = tr.plain, &full = tr.full, &bits = tr.bits;

  BConv2d conv(g, wt.data());
  std::vector<unsigned char> ws(conv.workspace_bytes(c.n, c.h, c.w));
  std::vector<float> out(static_cast<size_t>(M * c.oc));
  std::vector<word_t> ob(static_cast<size_t>(M * OCW));
  // Every supported row of the bconv table, forced (AVX2's two formulations included).
  hbn_test::for_each_row(detail::bconv_kernels(), [&](const char* row) {
    const std::string isa = row;
    const char* mode = "";
    // Large cases (the 4096 channels): one thread count and no float transform, so
    // the sanitizer builds stay fast; the padding logic is the same for both.
    const bool large = M * c.oc > 1000000;
    for (ThreadPool* pool : {&pool2, &pool1}) {
      if (large && pool == &pool1) break;
      std::fill(out.begin(), out.end(), -7.0f);
      conv.run(x.data(), c.n, c.h, c.w, plain, out.data(), ws.data(), *pool);
      for (int64_t i = 0; i < M * c.oc; ++i)
        if (out[i] != static_cast<float>(ref[i])) {
          report("bconv raw dot", isa, c, mode);
          break;
        }
      if (!large) {
        conv.run(x.data(), c.n, c.h, c.w, full, out.data(), ws.data(), *pool);
        for (int64_t i = 0; i < M * c.oc; ++i)
          if (out[i] != apply_transform(full, static_cast<float>(ref[i]), i / c.oc, static_cast<int>(i % c.oc))) {
            report("bconv transform", isa, c, mode);
            break;
          }
      }
      std::fill(ob.begin(), ob.end(), word_t{0x5555});
      conv.run_bits(x.data(), c.n, c.h, c.w, bits, ob.data(), ws.data(), *pool);
      bool ok = true;
      for (int64_t m = 0; m < M && ok; ++m)
        for (int64_t wd = 0; wd < OCW && ok; ++wd) {
          word_t want = 0;
          for (int j = static_cast<int>(wd * 64); j < c.oc && j < static_cast<int>(wd * 64 + 64); ++j)
            if (threshold_bit(bits, apply_transform(bits, static_cast<float>(ref[m * c.oc + j]), m, j), j))
              want |= word_t{1} << (j % 64);
          ok = ob[m * OCW + wd] == want;
        }
      if (!ok) report(M >= 160 ? "bconv bits (integer threshold unless avx512 below 256 rows)" : "bconv bits", isa, c, mode);
    }
  });
}

void check_float(const ConvCase& c, std::mt19937& rng, ThreadPool& pool1, ThreadPool& pool2) {
  const ConvGeometry g = c.geometry();
  const int64_t M = static_cast<int64_t>(c.n) * g.out_h(c.h) * g.out_w(c.w);
  const int64_t K = static_cast<int64_t>(c.kh) * c.kw * c.ic;
  const auto x = hbn_test::random_floats(static_cast<size_t>(c.n) * c.h * c.w * c.ic, rng);
  const auto wf = hbn_test::random_floats(static_cast<size_t>(c.oc) * c.ic * c.kh * c.kw, rng);
  const std::vector<word_t> wbits = binarize_oihw(g, wf.data());
  std::vector<float> ref_f(static_cast<size_t>(M * c.oc)), ref_b(ref_f.size()), out(ref_f.size());
  conv2d_f32_reference(g, x.data(), c.n, c.h, c.w, wf.data(), ref_f.data());
  wbconv2d_reference(g, x.data(), c.n, c.h, c.w, wbits.data(), ref_b.data());
  const float tol = hbn_test::tolerance(K, 1.0f);
  if (small(c)) {
    auto x_at = [&](int b, int y, int xx, int ch) {
      return static_cast<double>(x[((static_cast<size_t>(b) * c.h + y) * c.w + xx) * c.ic + ch]);
    };
    auto w_at = [&](int o, int ch, int kh, int kw) {
      return static_cast<double>(wf[((static_cast<size_t>(o) * c.ic + ch) * c.kh + kh) * c.kw + kw]);
    };
    const auto want_f = padded_conv(c, x_at, w_at);
    const auto want_b = padded_conv(c, x_at, [&](int o, int ch, int kh, int kw) { return w_at(o, ch, kh, kw) < 0 ? -1.0 : 1.0; });
    bool ok = true;
    for (size_t i = 0; i < ref_f.size() && ok; ++i)
      ok = std::fabs(ref_f[i] - want_f[i]) <= tol && std::fabs(ref_b[i] - want_b[i]) <= tol;
    if (!ok) report("float references vs padded conv", "scalar", c, "");
  }
  auto close = [&](const std::vector<float>& ref) {
    for (size_t i = 0; i < ref.size(); ++i)
      if (!(std::fabs(out[i] - ref[i]) <= tol)) return false;
    return true;
  };
  const OutputTransform plain;
  for (const std::string& isa : hbn_test::supported_paths()) {
    set_isa(isa);
    for (ConvAlgo algo : {ConvAlgo::im2col, ConvAlgo::direct, ConvAlgo::automatic}) {
      const char* an = algo == ConvAlgo::im2col ? "im2col" : algo == ConvAlgo::direct ? "direct" : "auto";
      Conv2dF32 f(g, wf.data());
      f.set_algo(algo);
      std::vector<unsigned char> ws(f.workspace_bytes(c.n, c.h, c.w));
      for (ThreadPool* pool : {&pool1, &pool2}) {
        std::fill(out.begin(), out.end(), -7.0f);
        f.run(x.data(), c.n, c.h, c.w, plain, out.data(), ws.data(), *pool);
        if (!close(ref_f)) report("Conv2dF32", isa, c, an);
      }
      for (WBStrategy st : {WBStrategy::unpack, WBStrategy::direct, WBStrategy::lut, WBStrategy::automatic}) {
        WBConv2d b(g, wbits.data());
        b.set_algo(algo);
        b.set_strategy(st);
        std::vector<unsigned char> wsb(b.workspace_bytes(c.n, c.h, c.w));
        for (ThreadPool* pool : {&pool1, &pool2}) {
          std::fill(out.begin(), out.end(), -7.0f);
          b.run(x.data(), c.n, c.h, c.w, plain, out.data(), wsb.data(), *pool);
          if (!close(ref_b)) report("WBConv2d", isa, c, an);
        }
      }
    }
  }
  reset_isa();
}

}  // namespace

int main() {
  std::mt19937 rng(2026);
  ThreadPool pool1(1), pool2(2);
  // n, h, w, ic, oc, kh, kw, sh, sw, ph, pw
  const ConvCase named[] = {
      {1, 1, 1, 8, 4096, 1, 1, 1, 1, 40, 40},  // issue 11: FullBinConv2d(8, 4096, 1, padding=40)
      {1, 4, 5, 3, 5, 1, 1, 1, 1, 3, 3},       // 1x1, pad 3
      {2, 4, 4, 5, 7, 3, 3, 1, 1, 5, 5},       // 3x3, pad 5
      {1, 3, 3, 1, 3, 5, 5, 1, 1, 11, 10},     // pad > 2k
      {1, 5, 6, 16, 20, 3, 3, 1, 1, 4, 4},     // BConv2d compact, 3-wide runs on 16 channels
      {1, 6, 5, 32, 33, 3, 3, 1, 1, 5, 4},     // ... on 32 channels
      {1, 7, 8, 17, 9, 3, 3, 2, 3, 6, 2},      // compact tap-by-tap gather, asymmetric
      {1, 9, 5, 64, 40, 2, 3, 3, 1, 5, 7},     // zero-padded copy, one word per pixel
      {2, 5, 7, 130, 70, 1, 3, 2, 2, 4, 0},    // three words per pixel, vertical padding only
      {1, 17, 17, 13, 16, 1, 1, 1, 1, 3, 3},   // 32-bit lanes, integer-threshold bits (M = 529)
      {1, 20, 20, 200, 12, 3, 3, 1, 1, 4, 4},  // narrow tiles (OC <= 16), M = 676: integer thresholds
      {3, 1, 1, 65, 33, 1, 1, 1, 1, 2, 2},     // a 1x1 map: all but one output pure padding
  };
  for (const ConvCase& c : named) {
    check_bconv(c, rng, pool1, pool2);
    if (c.oc <= 256) check_float(c, rng, pool1, pool2);
  }
  // Sweep: padding 0..2k+1 on each axis independently, kernels 1-4 (rectangular too),
  // strides 1-3, odd and word-straddling channel counts.
  const int channels[] = {1, 3, 5, 7, 15, 17, 31, 33, 63, 65, 97};
  for (int i = 0; i < 48; ++i) {
    ConvCase c{};
    c.kh = 1 + static_cast<int>(rng() % 4);
    c.kw = i % 3 == 0 ? c.kh : 1 + static_cast<int>(rng() % 4);
    c.ph = static_cast<int>(rng() % (2 * c.kh + 2));
    c.pw = static_cast<int>(rng() % (2 * c.kw + 2));
    c.sh = 1 + static_cast<int>(rng() % 3);
    c.sw = 1 + static_cast<int>(rng() % 3);
    c.ic = channels[rng() % (sizeof channels / sizeof channels[0])];
    c.oc = 1 + static_cast<int>(rng() % 40);
    c.n = 1 + static_cast<int>(rng() % 2);
    // At least the kernel once padded, sometimes smaller than the kernel itself.
    c.h = std::max(1 + static_cast<int>(rng() % 6), c.kh - 2 * c.ph);
    c.w = std::max(1 + static_cast<int>(rng() % 6), c.kw - 2 * c.pw);
    check_bconv(c, rng, pool1, pool2);
    check_float(c, rng, pool1, pool2);
  }
  return hbn_test::finish("test_padding");
}

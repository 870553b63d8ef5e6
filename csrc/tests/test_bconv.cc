// Every compiled BConv2d path against bconv2d_reference (exact integers), plus the fused
// output transform (against apply_transform) and the bit-output mode (against threshold_bit),
// on shapes that straddle word, tile and padding boundaries; 1 and 2 threads; +-1 inputs and
// {0, 1} inputs (InputDomain::zero_one, bit 1 = 0); a residual add written in place over the
// residual; the integer thresholds kept per object (keep_int_thresholds: changed transforms,
// concurrent runs).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <new>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "bconv/bconv.h"
#include "bconv/bconv_kernels.h"
#include "tests/check.h"
#include "peak/peak.h"

using namespace hbn;

using hbn_test::g_failures;

// Counts heap allocations so the test can check that run() allocates nothing.
static std::atomic<long> g_allocs{0};
#ifndef HBN_TSAN  // ThreadSanitizer builds keep its allocator (the count then stays 0)
void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

struct Case {
  int c, oc, kh, kw, sh, sw, ph, pw, n, h, w;
};

static InputDomain g_domain = InputDomain::pm1;  // of the cases being run

static void fail(const char* what, const char* kernel, const Case& k, int threads) {
  std::printf("FAIL %s kernel=%s C=%d OC=%d k=%dx%d s=%dx%d p=%dx%d n=%d %dx%d threads=%d domain=%s\n", what,
              kernel, k.c, k.oc, k.kh, k.kw, k.sh, k.sw, k.ph, k.pw, k.n, k.h, k.w, threads,
              g_domain == InputDomain::zero_one ? "{0,1}" : "+-1");
  ++g_failures;
}

static std::vector<word_t> random_bits(std::mt19937_64& rng, int64_t groups, int channels) {
  const int64_t words = words_for(channels);
  std::vector<word_t> v(static_cast<size_t>(groups * words));
  const word_t tail = channels % 64 ? (word_t{1} << (channels % 64)) - 1 : ~word_t{0};
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t i = 0; i < words; ++i) v[g * words + i] = rng() & (i == words - 1 ? tail : ~word_t{0});
  return v;
}

// Independent check of the reference on one case: +-1 (or {0, 1}) floats, zero padding.
static bool reference_matches_float_conv(const Case& k, const ConvGeometry& g, const std::vector<word_t>& x,
                                         const std::vector<word_t>& wt, const std::vector<int32_t>& ref) {
  const int64_t W = words_for(k.c);
  auto sgn = [](const std::vector<word_t>& v, int64_t word_base, int c) {
    return ((v[word_base + c / 64] >> (c % 64)) & 1) ? -1.0 : 1.0;
  };
  const bool zero_one = g_domain == InputDomain::zero_one;
  auto input = [&](int64_t word_base, int c) {
    const double b = sgn(x, word_base, c);
    return zero_one ? (b + 1.0) / 2.0 : b;
  };
  const int OH = g.out_h(k.h), OW = g.out_w(k.w);
  for (int b = 0; b < k.n; ++b)
    for (int oh = 0; oh < OH; ++oh)
      for (int ow = 0; ow < OW; ++ow)
        for (int oc = 0; oc < k.oc; ++oc) {
          double s = 0;
          for (int kh = 0; kh < k.kh; ++kh)
            for (int kx = 0; kx < k.kw; ++kx) {
              const int ih = oh * k.sh - k.ph + kh, iw = ow * k.sw - k.pw + kx;
              for (int c = 0; c < k.c; ++c) {
                const double xv = (ih < 0 || ih >= k.h || iw < 0 || iw >= k.w)
                                      ? 0.0
                                      : input(((int64_t(b) * k.h + ih) * k.w + iw) * W, c);
                s += xv * sgn(wt, ((int64_t(oc) * k.kh + kh) * k.kw + kx) * W, c);
              }
            }
          if (s != ref[((int64_t(b) * OH + oh) * OW + ow) * k.oc + oc]) return false;
        }
  return true;
}

static void run_case(const Case& k, std::mt19937_64& rng, ThreadPool& pool1, ThreadPool& pool2) {
  ConvGeometry g;
  g.in_channels = k.c;
  g.out_channels = k.oc;
  g.kernel_h = k.kh;
  g.kernel_w = k.kw;
  g.stride_h = k.sh;
  g.stride_w = k.sw;
  g.pad_h = k.ph;
  g.pad_w = k.pw;
  const int OH = g.out_h(k.h), OW = g.out_w(k.w);
  const int64_t M = int64_t(k.n) * OH * OW, OCW = words_for(k.oc);
  auto x = random_bits(rng, int64_t(k.n) * k.h * k.w, k.c);
  auto wt = random_bits(rng, int64_t(k.oc) * k.kh * k.kw, k.c);
  std::vector<int32_t> ref(static_cast<size_t>(M * k.oc));
  bconv2d_reference(g, x.data(), k.n, k.h, k.w, wt.data(), ref.data(), g_domain);
  if (M * k.oc * k.kh * k.kw * k.c < 3000000 && !reference_matches_float_conv(k, g, x, wt, ref))
    fail("reference vs float conv", "reference", k, 1);

  // Output-stage parameters: scale/bias/pixel_scale, thresholds incl. +-inf, random flips.
  std::uniform_real_distribution<float> ud(-1.0f, 1.0f);
  std::vector<float> scale(k.oc), bias(k.oc), thr(k.oc), ps(static_cast<size_t>(M));
  std::vector<uint8_t> flip(k.oc);
  for (int j = 0; j < k.oc; ++j) {
    scale[j] = ud(rng) * 0.1f;
    bias[j] = ud(rng) * 3.0f;
    thr[j] = j % 11 == 3 ? std::numeric_limits<float>::infinity()
             : j % 11 == 5 ? -std::numeric_limits<float>::infinity()
                           : ud(rng) * 2.0f;
    flip[j] = rng() % 2 ? static_cast<uint8_t>(rng() % 255 + 1) : 0;
  }
  for (auto& p : ps) p = 0.5f + 0.5f * (ud(rng) + 1.0f);
  OutputTransform plain;
  OutputTransform full;
  full.scale = scale.data();
  full.bias = bias.data();
  full.pixel_scale = ps.data();
  full.act = Activation::relu;
  OutputTransform bits = full;
  bits.act = Activation::none;
  bits.out_threshold = thr.data();
  bits.out_flip = flip.data();
  OutputTransform bits_noflip = bits;
  bits_noflip.out_flip = nullptr;
  bits_noflip.pixel_scale = nullptr;
  // Bit outputs without pixel_scale take the integer-threshold path (run() derives an integer
  // popcount threshold per channel from the float rule): stress its edges. Thresholds sit
  // exactly on reachable values y(d) (ties: neither < nor > holds), scales of both signs and
  // +-0, ReLU (a flat region), NaN and infinite thresholds, a scale that overflows to inf.
  const int Kbits = k.c * k.kh * k.kw;
  std::vector<float> iscale(k.oc), ibias(k.oc), ithr(k.oc);
  std::vector<uint8_t> iflip(k.oc);
  const float inf = std::numeric_limits<float>::infinity();
  for (int j = 0; j < k.oc; ++j) {
    const int kind = static_cast<int>(rng() % 12);
    iscale[j] = kind == 0 ? 0.0f : kind == 1 ? -0.0f : kind == 2 ? 3e37f : ud(rng) * 0.2f;
    ibias[j] = kind == 3 ? 0.0f : ud(rng) * 2.0f;
    const int d0 = static_cast<int>(rng() % (2 * Kbits + 3)) - Kbits - 1;
    float y0 = static_cast<float>(d0) * iscale[j];
    y0 = y0 + ibias[j];
    ithr[j] = kind == 4 ? std::nanf("") : kind == 5 ? inf : kind == 6 ? -inf : kind == 7 ? 0.0f : y0;
    iflip[j] = static_cast<uint8_t>(rng() % 2);
  }
  OutputTransform ibits;
  ibits.scale = iscale.data();
  ibits.bias = ibias.data();
  ibits.out_threshold = ithr.data();
  ibits.out_flip = iflip.data();
  OutputTransform ibits_relu = ibits;
  ibits_relu.act = Activation::relu;
  // The same parameters by the float rule (no pixel scale or residual; one infinite scale keeps
  // the layer off the integer path): flipped channels against NaN, infinite and tied
  // thresholds, with infinite and NaN y (d * inf) in the compare.
  std::vector<float> fscale = iscale;
  fscale[0] = inf;
  OutputTransform fbits = ibits;
  fbits.scale = fscale.data();
  OutputTransform fbits_relu = ibits_relu;
  fbits_relu.scale = fscale.data();
  OutputTransform ibits_plain;  // no scale or bias: the raw dot against the thresholds
  ibits_plain.out_threshold = ithr.data();
  ibits_plain.act = Activation::relu;

  // A fused residual add (with and without the conv's own ReLU, with a ReLU after the sum),
  // residual rows wider than OC (a channel slice of a larger tensor), NaN, -0 and infinities in it.
  const int64_t res_ld = k.oc + 3;
  std::vector<float> resid(static_cast<size_t>(M * res_ld));
  for (size_t i = 0; i < resid.size(); ++i)
    resid[i] = i % 29 == 7 ? std::nanf("") : i % 31 == 5 ? -0.0f : i % 37 == 3 ? -inf : ud(rng) * 4.0f;
  OutputTransform res_relu = full;
  res_relu.act = Activation::none;
  res_relu.residual = resid.data();
  res_relu.residual_ld = res_ld;
  res_relu.residual_act = Activation::relu;
  OutputTransform res_both = full;  // ReLU before and after the add
  res_both.residual = resid.data();
  res_both.residual_ld = res_ld;
  res_both.residual_act = Activation::relu;
  OutputTransform res_plain = plain;
  res_plain.residual = resid.data();
  res_plain.residual_ld = res_ld;
  OutputTransform res_bits = ibits;  // bit output of the sum: the float rule, never the integer one
  res_bits.residual = resid.data();
  res_bits.residual_ld = res_ld;
  res_bits.residual_act = Activation::relu;

  BConv2d conv(g, wt.data());
  conv.set_input_domain(g_domain);
  std::vector<unsigned char> ws(conv.workspace_bytes(k.n, k.h, k.w) + 1);
  void* wsp = ws.data() + 1;  // deliberately misaligned: run must align it itself
  // Every row of the micro-kernel table (AVX2 in both its formulations).
  hbn_test::for_each_row(detail::bconv_kernels(), [&](const char* isa) {
    for (int threads = 1; threads <= 2; ++threads) {
      ThreadPool& pool = threads == 1 ? pool1 : pool2;
      std::vector<float> out(static_cast<size_t>(M * k.oc), -7.0f);
      const long allocs_before = g_allocs.load();
      conv.run(x.data(), k.n, k.h, k.w, plain, out.data(), wsp, pool);
      if (g_allocs.load() != allocs_before) fail("run() allocated", isa, k, threads);
      for (int64_t i = 0; i < M * k.oc; ++i)
        if (out[i] != static_cast<float>(ref[i])) {
          fail("raw dot", isa, k, threads);
          break;
        }
      conv.run(x.data(), k.n, k.h, k.w, full, out.data(), wsp, pool);
      for (int64_t m = 0; m < M; ++m)
        for (int j = 0; j < k.oc; ++j) {
          const float want = apply_transform(full, static_cast<float>(ref[m * k.oc + j]), m, j);
          if (out[m * k.oc + j] != want) {
            fail("transform", isa, k, threads);
            m = M;
            break;
          }
        }
      for (const OutputTransform* rt : {&res_relu, &res_both, &res_plain}) {
        // rows_done must report every row once, after the row is final.
        std::vector<int> seen(static_cast<size_t>(M), 0);
        bool early = false;
        std::vector<float> snap;
        const BConv2d::RowsDone hook = [&](int64_t m0, int64_t m1) {
          for (int64_t m = m0; m < m1; ++m) {
            ++seen[static_cast<size_t>(m)];
            for (int j = 0; j < k.oc; ++j)
              if (out[m * k.oc + j] == -7.0f) early = true;
          }
        };
        std::fill(out.begin(), out.end(), -7.0f);
        conv.run(x.data(), k.n, k.h, k.w, *rt, out.data(), wsp, pool, rt == &res_relu ? &hook : nullptr);
        if (rt == &res_relu && (early || std::count(seen.begin(), seen.end(), 1) != M))
          fail("rows_done", isa, k, threads);
        bool ok = true;
        for (int64_t m = 0; m < M && ok; ++m)
          for (int j = 0; j < k.oc && ok; ++j) {
            const float want = apply_transform(*rt, static_cast<float>(ref[m * k.oc + j]), m, j);
            const float got = out[m * k.oc + j];
            ok = std::memcmp(&want, &got, sizeof(float)) == 0 || (std::isnan(want) && std::isnan(got));
          }
        if (!ok) fail("residual", isa, k, threads);
      }
      {
        // In place (the runtime's fused add over a residual that dies there): out is the
        // residual buffer itself, rows of exactly OC floats.
        std::vector<float> buf(static_cast<size_t>(M * k.oc));
        for (int64_t m = 0; m < M; ++m)
          std::copy_n(resid.begin() + m * res_ld, k.oc, buf.begin() + m * k.oc);
        const std::vector<float> orig = buf;
        OutputTransform ip = res_both;
        ip.residual = buf.data();
        ip.residual_ld = k.oc;
        OutputTransform ref_t = ip;
        ref_t.residual = orig.data();
        conv.run(x.data(), k.n, k.h, k.w, ip, buf.data(), wsp, pool);
        bool ok = true;
        for (int64_t m = 0; m < M && ok; ++m)
          for (int j = 0; j < k.oc && ok; ++j) {
            const float want = apply_transform(ref_t, static_cast<float>(ref[m * k.oc + j]), m, j);
            const float got = buf[m * k.oc + j];
            ok = std::memcmp(&want, &got, sizeof(float)) == 0 || (std::isnan(want) && std::isnan(got));
          }
        if (!ok) fail("residual in place", isa, k, threads);
      }
      for (const OutputTransform* bt :
           {&bits, &bits_noflip, &ibits, &ibits_relu, &ibits_plain, &res_bits, &fbits, &fbits_relu}) {
        std::vector<word_t> ob(static_cast<size_t>(M * OCW), 0x123456789abcdefULL);
        conv.run_bits(x.data(), k.n, k.h, k.w, *bt, ob.data(), wsp, pool);
        bool ok = true;
        for (int64_t m = 0; m < M && ok; ++m)
          for (int64_t wd = 0; wd < OCW && ok; ++wd) {
            word_t want = 0;
            for (int j = int(wd * 64); j < k.oc && j < int(wd * 64 + 64); ++j) {
              const float y = apply_transform(*bt, static_cast<float>(ref[m * k.oc + j]), m, j);
              if (threshold_bit(*bt, y, j)) want |= word_t{1} << (j % 64);
            }
            ok = ob[m * OCW + wd] == want;
          }
        if (!ok)
          fail(bt == &bits ? "bits" : bt == &bits_noflip ? "bits (no flip)"
                : bt == &fbits || bt == &fbits_relu ? "bits (float rule, flips)" : "bits (integer threshold)",
               isa, k, threads);
      }
    }
  });

  // keep_int_thresholds: the integer-threshold cuts are kept per object, keyed by the
  // transform's pointers: a second run with the same transform reuses them, a transform with
  // other vectors must not; an object without it honours values changed in place; two threads
  // running the object at once with different transforms each get their own (one uses the
  // cache, the other its workspace).
  auto bits_ok = [&](const OutputTransform& bt, const std::vector<word_t>& ob) {
    for (int64_t m = 0; m < M; ++m)
      for (int64_t wd = 0; wd < OCW; ++wd) {
        word_t want = 0;
        for (int j = int(wd * 64); j < k.oc && j < int(wd * 64 + 64); ++j) {
          const float y = apply_transform(bt, static_cast<float>(ref[m * k.oc + j]), m, j);
          if (threshold_bit(bt, y, j)) want |= word_t{1} << (j % 64);
        }
        if (ob[m * OCW + wd] != want) return false;
      }
    return true;
  };
  {
    std::vector<word_t> ob(static_cast<size_t>(M * OCW));
    BConv2d kept(g, wt.data());
    kept.set_input_domain(g_domain);
    kept.keep_int_thresholds(M);
    std::vector<float> ithr2 = ithr, iscale2 = iscale;
    ithr2[k.oc / 2] = ithr2[k.oc / 2] * 0.5f - 1.0f;
    iscale2[0] = -iscale2[0];
    OutputTransform other_thr = ibits, other_scale = ibits;
    other_thr.out_threshold = ithr2.data();
    other_scale.scale = iscale2.data();
    for (const OutputTransform* bt : {&ibits, &ibits, &other_thr, &other_thr, &ibits, &other_scale, &ibits_relu}) {
      kept.run_bits(x.data(), k.n, k.h, k.w, *bt, ob.data(), wsp, pool1);
      if (!bits_ok(*bt, ob)) fail("integer thresholds kept across runs", "best", k, 1);
    }
    const std::vector<float> ithr0 = ithr;
    for (int round = 0; round < 2; ++round) {  // the object without the cache, values changed in place
      if (round == 1) ithr[k.oc / 2] = ithr[k.oc / 2] * 0.5f - 1.0f;
      conv.run_bits(x.data(), k.n, k.h, k.w, ibits, ob.data(), wsp, pool1);
      if (!bits_ok(ibits, ob)) fail("integer thresholds, values changed in place", "best", k, 1);
    }
    ithr = ithr0;
    std::vector<unsigned char> ws2(ws.size());
    std::vector<word_t> ob2(ob.size());
    bool ok1 = true, ok2 = true;
    std::thread other([&] {
      ThreadPool p(1);
      for (int r = 0; r < 20; ++r) {
        kept.run_bits(x.data(), k.n, k.h, k.w, ibits_relu, ob2.data(), ws2.data() + 1, p);
        ok2 = ok2 && bits_ok(ibits_relu, ob2);
      }
    });
    for (int r = 0; r < 20; ++r) {
      kept.run_bits(x.data(), k.n, k.h, k.w, ibits, ob.data(), wsp, pool1);
      ok1 = ok1 && bits_ok(ibits, ob);
    }
    other.join();
    if (!ok1 || !ok2) fail("integer thresholds, concurrent runs", "best", k, 1);
  }

  // The packed form (also the bconv_panel32 layout of .hbn files): consistent by
  // bconv_check_packed, back to the canonical bits by bconv_unpack (what a kernel row with its
  // own layout repacks from), and a view of it runs exactly as the object that packed it.
  const BConvPacked p = bconv_packed_sizes(g);
  std::vector<word_t> buf(p.total / sizeof(word_t));
  bconv_pack(g, wt.data(), buf.data());
  const std::string bad = bconv_check_packed(g, buf.data());
  if (!bad.empty()) fail(("packed form: " + bad).c_str(), "pack", k, 1);
  if (bconv_unpack(g, buf.data()) != wt) fail("bconv_unpack", "pack", k, 1);
  if ((p.prefix_bytes != 0) != (g.pad_h || g.pad_w)) fail("prefix table iff padded", "pack", k, 1);
  if ((p.lane32_bytes != 0) != (int64_t(k.c) * k.kh * k.kw <= 32)) fail("lanes iff <= 32 bits", "pack", k, 1);
  BConv2d view = BConv2d::view(g, buf.data());
  view.set_input_domain(g_domain);
  if (view.owned_bytes() != 0 || conv.owned_bytes() != p.total) fail("owned bytes", "pack", k, 1);
  std::vector<float> a(static_cast<size_t>(M * k.oc)), b(a.size());
  conv.run(x.data(), k.n, k.h, k.w, full, a.data(), wsp, pool1);
  view.run(x.data(), k.n, k.h, k.w, full, b.data(), wsp, pool1);
  if (a != b) fail("view of the packed form", "pack", k, 1);
  // Corrupt derived parts are caught.
  if (p.prefix_bytes) {
    buf[p.prefix_off / sizeof(word_t)] ^= 2;
    if (bconv_check_packed(g, buf.data()).find("prefix") == std::string::npos) fail("corrupt prefix", "pack", k, 1);
    buf[p.prefix_off / sizeof(word_t)] ^= 2;
  }
  if (k.oc % 32) {
    buf[k.oc % 32] |= 1;  // panel 0, word 0 of a padding channel (channels oc..31 of block 0 when oc < 32)
    if (k.oc < 32 && bconv_check_packed(g, buf.data()).find("padding channel") == std::string::npos)
      fail("bit in a padding channel", "pack", k, 1);
  }
}

int main() {
  std::mt19937_64 rng(12345);
  ThreadPool pool1(1), pool2(2);
  const Case cases[] = {
      // c, oc, kh, kw, sh, sw, ph, pw, n, h, w
      {1, 5, 3, 3, 1, 1, 1, 1, 2, 7, 9},
      {63, 33, 3, 3, 2, 2, 1, 1, 1, 9, 8},
      {64, 32, 1, 1, 1, 1, 0, 0, 2, 5, 5},      // 1x1 stride 1: no im2col
      {65, 40, 5, 5, 1, 1, 2, 2, 1, 11, 7},
      {127, 7, 7, 7, 2, 2, 2, 2, 1, 13, 13},
      {200, 70, 1, 1, 1, 1, 0, 0, 3, 3, 5},     // no im2col, partial last panel
      {200, 9, 11, 11, 4, 4, 2, 2, 1, 23, 19},
      {96, 64, 3, 3, 1, 1, 1, 1, 1, 6, 6},
      {3, 16, 1, 1, 2, 2, 0, 0, 2, 7, 7},       // strided 1x1
      {256, 36, 3, 3, 1, 1, 1, 1, 1, 5, 5},
      {64, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1},       // single output
      {130, 100, 3, 1, 2, 1, 1, 0, 2, 5, 4},    // rectangular kernel and stride
      {8, 10, 3, 3, 1, 1, 2, 2, 1, 4, 4},       // padding larger than k/2: all-padding taps
      {32, 130, 2, 2, 1, 1, 0, 0, 1, 3, 3},     // few rows, many channels (channel split)
      {512, 20, 1, 1, 1, 1, 0, 0, 3, 1, 1},     // linear layer: batch 3 (M % 4 == 3)
      {16, 64, 3, 3, 1, 1, 1, 1, 2, 9, 8},      // compact fields: 16 channels x 9 taps in 3 words
      {70, 12, 3, 3, 1, 1, 0, 0, 2, 5, 3},      // kernel spans the width: one K segment
      {40, 9, 1, 5, 1, 2, 0, 2, 1, 6, 9},       // 1xK kernel with horizontal padding only
      // Model-like shapes with >= 256 output rows (bit outputs take the integer-threshold path):
      {64, 64, 3, 3, 1, 1, 1, 1, 1, 23, 23},    // ResNet layer1-like, padding classes
      {32, 40, 1, 1, 1, 1, 0, 0, 2, 17, 16},    // 32-bit lanes, 2 blocks
      {96, 16, 1, 1, 1, 1, 0, 0, 1, 23, 23},    // narrow tiles
      {16, 64, 3, 3, 1, 1, 1, 1, 1, 24, 22},    // compact 3x3 on 16 channels (3-wide runs)
      {100, 48, 3, 3, 2, 2, 1, 1, 1, 45, 46},   // 2 words, a half block after a whole one, stride 2
      {64, 128, 1, 1, 2, 2, 0, 0, 1, 46, 46},   // 1x1 stride-2 downsample
      // Model-like shapes with 160-255 output rows (bit outputs: the float rule on the avx512 row,
      // the integer threshold on the others):
      {16, 16, 1, 1, 1, 1, 0, 0, 2, 9, 9},      // 1x1, 16 -> 16: 32-bit lanes
      {32, 70, 1, 1, 1, 1, 0, 0, 1, 13, 13},    // 1x1 on 32 channels: 32-bit lanes, 3 blocks
      {3, 20, 3, 3, 1, 1, 1, 1, 1, 13, 13},     // 27-bit compact field: 32-bit lanes, padding
      {96, 16, 1, 1, 1, 1, 0, 0, 1, 13, 13},    // squeeze-like 1x1, 2 words: narrow tiles
      {48, 48, 3, 3, 1, 1, 1, 1, 1, 13, 13},    // compact 3x3, OC a multiple of 16 but not 32
      {16, 64, 3, 3, 1, 1, 1, 1, 1, 14, 12},    // compact 3x3 on 16 channels (3-wide runs)
      {32, 40, 3, 3, 2, 1, 1, 1, 2, 12, 9},     // compact 3x3 on 32 channels, vertical stride
      {64, 64, 3, 3, 1, 1, 1, 1, 1, 13, 13},    // ResNet layer1-like, one word per pixel
      {64, 128, 1, 1, 2, 2, 0, 0, 1, 26, 26},   // 1x1 stride-2 downsample
      {100, 48, 3, 3, 1, 1, 1, 1, 1, 13, 13},   // 2 words, 48 channels: a half block after a whole one
      {130, 96, 3, 3, 2, 2, 1, 1, 1, 27, 27},   // 3 words, three whole blocks, stride 2
      {545, 33, 3, 3, 1, 1, 1, 1, 1, 7, 6},     // 9 words per pixel, 33 channels
      // One-word fields (BKernel::tile1w where a row has it): SqueezeNet's expand1x1 on 48
      // channels (6 blocks, >= 256 rows), odd channel counts, at most 16 outputs (tile1w, not
      // the narrow tile), a 63-bit compact 3x3 field with padding classes, a partial last panel
      // and a partial last block, stride 2.
      {48, 192, 1, 1, 1, 1, 0, 0, 1, 27, 27},
      {57, 9, 1, 1, 1, 1, 0, 0, 2, 5, 7},
      {7, 33, 3, 3, 1, 1, 1, 1, 1, 11, 10},
      {64, 100, 1, 1, 1, 1, 0, 0, 1, 17, 17},
      {40, 20, 1, 1, 2, 2, 0, 0, 1, 25, 26},
      // Short fields of 2-3 words (the first K word initialises the accumulators): SqueezeNet's
      // squeeze 1x1 on 128 channels to 32, 3x3 on 24 channels (216 bits, compact), 1x3 kernel.
      {128, 32, 1, 1, 1, 1, 0, 0, 1, 17, 16},
      {24, 50, 3, 3, 1, 1, 1, 1, 1, 10, 11},
      {65, 17, 1, 3, 1, 1, 0, 1, 1, 6, 19},
  };
  for (const InputDomain d : {InputDomain::pm1, InputDomain::zero_one}) {
    g_domain = d;
    for (const Case& k : cases) run_case(k, rng, pool1, pool2);
  }
  // The peak loops of every path run and report a positive rate (every row of both tables).
  for (const std::string& path : hbn_test::supported_paths()) {
    const double b = peak_binary_macs(path, 0.005), f = peak_fma_macs(path, 0.005);
    CHECK(b > 0.0 && f > 0.0, "peak loops path=%s: %g %g", path.c_str(), b, f);
  }
  return hbn_test::finish("test_bconv");
}

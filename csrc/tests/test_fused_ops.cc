// The executor's fused ops against their unfused definitions, under every compiled ISA path:
// max_pool_fused and add_fused (floats written and/or packed for up to 6 consumers, i.e. more
// than one pass of kMaxPackSinks), nchw_pack (the model input straight to bits, contiguous and
// strided) and the small-channel NCHW -> NHWC path. Exact: floats compared bit for bit, bits
// against pack_rows_reference of the unfused floats. Inputs include -0.0, NaN, values equal to
// the thresholds and +-inf thresholds (constant channels).
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "bitpack/bitpack.h"
#include "hbn/isa.h"
#include "runtime/graph.h"
#include "runtime/ops.h"
#include "runtime/transpose.h"
#include "check.h"

namespace {

using hbn::word_t;

struct Rule {
  std::vector<float> thr;
  std::vector<uint8_t> flip;  // empty = none
};

std::vector<Rule> make_rules(int count, int64_t c, std::mt19937& rng) {
  std::vector<Rule> rules(count);
  std::uniform_real_distribution<float> d(-0.5f, 0.5f);
  for (int k = 0; k < count; ++k) {
    rules[k].thr.resize(c);
    for (int64_t ch = 0; ch < c; ++ch) {
      const int pick = static_cast<int>(rng() % 10);
      rules[k].thr[ch] = pick == 0 ? std::numeric_limits<float>::infinity()
                         : pick == 1 ? -std::numeric_limits<float>::infinity()
                         : pick == 2 ? 0.0f
                                     : d(rng);
    }
    if (k % 2 == 0) {
      rules[k].flip.resize(c);
      for (auto& f : rules[k].flip) f = static_cast<uint8_t>(rng() & 1);
    }
  }
  return rules;
}

// Random floats with the edge values every comparison must get right.
std::vector<float> edgy(size_t n, std::mt19937& rng) {
  std::vector<float> v = hbn_test::random_floats(n, rng);
  for (size_t i = 0; i < n; i += 7) v[i] = (i / 7) % 3 == 0 ? -0.0f : ((i / 7) % 3 == 1 ? 0.0f : 0.25f);
  for (size_t i = 5; i < n; i += 97) v[i] = std::numeric_limits<float>::quiet_NaN();
  return v;
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }


void test_max_pool_fused() {
  std::mt19937 rng(11);
  hbn::ThreadPool pool(2);
  const int64_t n = 2, h = 9, w = 8;
  for (int64_t c : {1, 3, 16, 17, 64, 70, 130}) {
    const int64_t words = hbn::words_for(c);
    const std::vector<float> x = edgy(static_cast<size_t>(n * h * w * c), rng);
    const std::vector<Rule> rules = make_rules(6, c, rng);
    std::vector<hbn::PackTarget> targets;
    for (const Rule& r : rules)
      targets.push_back(hbn::make_pack_target(r.thr.data(), r.flip.empty() ? nullptr : r.flip.data(), c));
    for (int k : {2, 3})
      for (int s : {1, 2}) {
        const int pad = k / 2;
        const int64_t oh = hbn::pool_out_size(h, k, s, pad, true), ow = hbn::pool_out_size(w, k, s, pad, true);
        const hbn::PoolParams pp{k, k, s, s, pad, pad, oh, ow, true};
        const int64_t rows = n * oh * ow;
        // the unfused definition: scalar max-pool, then the reference packing
        hbn::set_isa("scalar");
        std::vector<float> want_f(static_cast<size_t>(rows * c));
        hbn::max_pool(x.data(), n, h, w, c, pp, want_f.data(), pool);
        std::vector<std::vector<word_t>> want_b(rules.size(), std::vector<word_t>(rows * words));
        for (size_t q = 0; q < rules.size(); ++q)
          hbn::pack_rows_reference(want_f.data(), rows, static_cast<int>(c), c, want_b[q].data(), rules[q].thr.data(),
                                   rules[q].flip.empty() ? nullptr : rules[q].flip.data());
        for (const std::string& isa : hbn_test::supported_paths()) {
          hbn::set_isa(isa);
          std::vector<float> got_f(want_f.size() + 16, 7.0f);
          hbn::max_pool(x.data(), n, h, w, c, pp, got_f.data(), pool);
          CHECK(same_bits(got_f.data(), want_f.data(), want_f.size()), "max_pool isa=%s c=%ld", isa.c_str(), long(c));
          for (int ns : {0, 1, 4, 6}) {
            for (bool with_floats : {true, false}) {
              if (ns == 0 && !with_floats) continue;
              std::vector<std::vector<word_t>> got_b(ns, std::vector<word_t>(rows * words + 8, ~word_t{0}));
              std::vector<hbn::PackSink> sinks;
              for (int q = 0; q < ns; ++q) sinks.push_back(targets[q].sink(got_b[q].data()));
              std::fill(got_f.begin(), got_f.end(), 7.0f);
              hbn::max_pool_fused(x.data(), n, h, w, c, pp, with_floats ? got_f.data() : nullptr, sinks.data(), ns, pool);
              if (with_floats)
                CHECK(same_bits(got_f.data(), want_f.data(), want_f.size()), "fused floats isa=%s c=%ld ns=%d",
                      isa.c_str(), long(c), ns);
              CHECK(got_f[want_f.size()] == 7.0f, "wrote past the output");
              for (int q = 0; q < ns; ++q) {
                CHECK(std::equal(want_b[q].begin(), want_b[q].end(), got_b[q].begin()),
                      "fused bits isa=%s c=%ld k=%d s=%d ns=%d sink=%d", isa.c_str(), long(c), k, s, ns, q);
                CHECK(got_b[q][rows * words] == ~word_t{0}, "bits past the output");
              }
            }
          }
        }
      }
  }
  hbn::reset_isa();
}

// Every float max-pool row (max_pool, max_pool_fused with sinks, max_pool_into) against the
// scalar max_pool over shapes beyond the zoo: kernels 1-5 (also kh != kw), strides 1-3, pads
// 0-2, ceil mode, widths 1-9, channel counts on and off the 64-channel groups of the fixed-window
// runs. Values come from a small set with NaN, +-0, +-inf and many ties, so the fold order
// (first element's NaN kept, later NaNs skipped, the first of equal values kept) is exercised
// in every window position, including the carried columns of the 3x3/2 run.
void test_max_pool_shapes() {
  std::mt19937 rng(21);
  hbn::ThreadPool pool(2);
  const float kVals[] = {-0.0f, 0.0f, 1.0f, -1.0f, 0.5f, std::numeric_limits<float>::quiet_NaN(),
                         std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  struct Win { int kh, kw, sh, sw; };
  const std::vector<Win> wins = {{3, 3, 2, 2}, {2, 2, 2, 2}, {3, 3, 1, 1}, {1, 1, 1, 1}, {5, 5, 3, 3},
                                 {3, 2, 1, 2}, {2, 3, 3, 1}, {5, 3, 2, 2}, {3, 3, 3, 3}};
  long cases = 0;
  for (const Win& wn : wins)
    for (int64_t c : {1, 3, 17, 64, 100, 128})
      for (int64_t w : {1, 2, 3, 4, 5, 7, 9})
        for (int pad = 0; pad <= std::min(2, std::min(wn.kh, wn.kw) / 2); ++pad)
          for (bool ceil_mode : {false, true}) {
            const int64_t n = 2, h = 3 + (w + c) % 5;
            if (h + 2 * pad < wn.kh || w + 2 * pad < wn.kw) continue;
            if ((c == 100 || c == 17) && w % 2 == 0) continue;  // keep the run short
            const int64_t oh = hbn::pool_out_size(h, wn.kh, wn.sh, pad, ceil_mode);
            const int64_t ow = hbn::pool_out_size(w, wn.kw, wn.sw, pad, ceil_mode);
            const hbn::PoolParams pp{wn.kh, wn.kw, wn.sh, wn.sw, pad, pad, oh, ow, true};
            std::vector<float> x(static_cast<size_t>(n * h * w * c));
            for (float& v : x) v = (rng() % 3 == 0) ? kVals[rng() % 8] : kVals[rng() % 5];
            const int64_t rows = n * oh * ow, words = hbn::words_for(c);
            hbn::set_isa("scalar");
            std::vector<float> want(static_cast<size_t>(rows * c));
            hbn::max_pool(x.data(), n, h, w, c, pp, want.data(), pool);
            std::vector<float> thr(static_cast<size_t>(c), 0.25f);
            const hbn::PackTarget t = hbn::make_pack_target(thr.data(), nullptr, c);
            std::vector<word_t> want_b(static_cast<size_t>(rows * words));
            hbn::pack_rows_reference(want.data(), rows, static_cast<int>(c), c, want_b.data(), thr.data(), nullptr);
            for (const std::string& isa : hbn_test::supported_paths()) {
              hbn::set_isa(isa);
              std::vector<float> got(want.size() + 16, 7.0f);
              hbn::max_pool(x.data(), n, h, w, c, pp, got.data(), pool);
              CHECK(same_bits(got.data(), want.data(), want.size()) && got[want.size()] == 7.0f,
                    "max_pool isa=%s c=%ld k=%dx%d s=%dx%d pad=%d ceil=%d w=%ld", isa.c_str(), long(c), wn.kh, wn.kw,
                    wn.sh, wn.sw, pad, int(ceil_mode), long(w));
              std::vector<word_t> got_b(want_b.size() + 4, ~word_t{0});
              const hbn::PackSink sink = t.sink(got_b.data());
              std::fill(got.begin(), got.end(), 7.0f);
              hbn::max_pool_fused(x.data(), n, h, w, c, pp, got.data(), &sink, 1, pool);
              CHECK(same_bits(got.data(), want.data(), want.size()) && got[want.size()] == 7.0f,
                    "max_pool_fused floats isa=%s c=%ld k=%dx%d s=%dx%d pad=%d w=%ld", isa.c_str(), long(c), wn.kh,
                    wn.kw, wn.sh, wn.sw, pad, long(w));
              CHECK(std::equal(want_b.begin(), want_b.end(), got_b.begin()) && got_b[want_b.size()] == ~word_t{0},
                    "max_pool_fused bits isa=%s c=%ld k=%dx%d s=%dx%d pad=%d w=%ld", isa.c_str(), long(c), wn.kh,
                    wn.kw, wn.sh, wn.sw, pad, long(w));
              // the pooled rows in pieces, as a fused conv's bands call them
              std::fill(got.begin(), got.end(), 7.0f);
              for (int64_t r = 0; r < n * oh; r += 2)
                hbn::max_pool_fused_range(x.data(), h, w, c, pp, got.data(), nullptr, 0, r, std::min(n * oh, r + 2));
              CHECK(same_bits(got.data(), want.data(), want.size()), "max_pool_fused_range isa=%s c=%ld k=%dx%d",
                    isa.c_str(), long(c), wn.kh, wn.kw);
              ++cases;
            }
          }
  CHECK(cases > 500, "max_pool shape sweep ran only %ld cases", cases);
  hbn::reset_isa();
}

// adaptive_avg_pool (registers per 32-channel block) against the plain definition: each
// channel's window summed in (y, x) order from 0.0f, times 1 / count, bit for bit.
void test_adaptive_avg_pool() {
  std::mt19937 rng(23);
  hbn::ThreadPool pool(2);
  for (int64_t c : {1, 5, 31, 32, 33, 100, 1000})
    for (const auto& [h, w, oh, ow] : std::vector<std::array<int64_t, 4>>{{13, 13, 1, 1}, {7, 5, 3, 2}, {4, 9, 4, 9}, {6, 6, 4, 5}}) {
      const int64_t n = 2;
      std::vector<float> x = edgy(static_cast<size_t>(n * h * w * c), rng);
      std::vector<float> want(static_cast<size_t>(n * oh * ow * c)), got(want.size() + 4, 7.0f);
      for (int64_t r = 0; r < n * oh; ++r) {
        const int64_t ni = r / oh, oy = r % oh, y0 = oy * h / oh, y1 = ((oy + 1) * h + oh - 1) / oh;
        for (int64_t ox = 0; ox < ow; ++ox) {
          const int64_t x0 = ox * w / ow, x1 = ((ox + 1) * w + ow - 1) / ow;
          for (int64_t ch = 0; ch < c; ++ch) {
            float sum = 0.0f;
            for (int64_t y = y0; y < y1; ++y)
              for (int64_t xx = x0; xx < x1; ++xx) sum += x[static_cast<size_t>(((ni * h + y) * w + xx) * c + ch)];
            want[static_cast<size_t>((r * ow + ox) * c + ch)] = sum * (1.0f / static_cast<float>((y1 - y0) * (x1 - x0)));
          }
        }
      }
      hbn::adaptive_avg_pool(x.data(), n, h, w, c, oh, ow, got.data(), pool);
      CHECK(same_bits(got.data(), want.data(), want.size()) && got[want.size()] == 7.0f,
            "adaptive_avg_pool c=%ld %ldx%ld -> %ldx%ld", long(c), long(h), long(w), long(oh), long(ow));
    }
}

// max_pool_bits against pooling the floats and packing them (the float path of a max-pool
// between a producer that thresholds for the consumer and that consumer): AND per channel, OR
// where the rule is flipped. Kernel 2 / 3 and wide, strides 1-3, padding, ceil-mode windows,
// partial last words, word counts past the kernel's column buffer (its word blocks), inputs
// with -0, ties at the thresholds and infinities, +-inf thresholds (zero BN scale). No NaN:
// bit-pooled values come from conv kernels and the checked-finite input (docs/architecture.md).
void test_max_pool_bits() {
  std::mt19937 rng(13);
  hbn::ThreadPool pool(2);
  struct Case {
    int64_t c, h, w;
    int kh, kw;
  };
  std::vector<Case> cases;
  for (int64_t c : {1, 5, 64, 70, 96, 130, 256, 512})
    for (int k : {2, 3}) cases.push_back({c, 9, 8, k, k});
  cases.push_back({64 * 700, 3, 3, 3, 3});  // 700 words: two word blocks
  cases.push_back({64 * 60, 4, 45, 2, 40});  // wide window: 51-word blocks
  for (const Case& cs : cases) {
    const int64_t n = 2, c = cs.c, h = cs.h, w = cs.w, words = hbn::words_for(c);
    std::vector<float> x = hbn_test::random_floats(static_cast<size_t>(n * h * w * c), rng);
    const std::vector<Rule> rules = make_rules(2, c, rng);
    for (size_t i = 0; i < x.size(); ++i) {
      const int pick = static_cast<int>(rng() % 16);
      if (pick == 0) x[i] = -0.0f;
      else if (pick == 1) x[i] = rules[0].thr[i % c];  // a tie with the threshold
      else if (pick == 2) x[i] = (i & 1) ? std::numeric_limits<float>::infinity() : -std::numeric_limits<float>::infinity();
      else if (pick < 6) x[i] = std::round(x[i] * 2.0f) * 0.5f;  // ties inside a window
    }
    for (const Rule& rule : rules) {
      const uint8_t* flip = rule.flip.empty() ? nullptr : rule.flip.data();
      std::vector<word_t> or_mask(static_cast<size_t>(words), 0);
      for (int64_t ch = 0; ch < c && flip; ++ch)
        if (flip[ch]) or_mask[ch / 64] |= word_t{1} << (ch % 64);
      std::vector<word_t> xb(static_cast<size_t>(n * h * w * words));
      hbn::pack_rows_reference(x.data(), n * h * w, static_cast<int>(c), c, xb.data(), rule.thr.data(), flip);
      for (int s : {1, 2, 3})
        for (int pad = 0; pad <= cs.kh / 2 && pad <= cs.kw / 2; ++pad)
          for (bool ceil_mode : {false, true}) {
            const int64_t oh = hbn::pool_out_size(h, cs.kh, s, pad, ceil_mode);
            const int64_t ow = hbn::pool_out_size(w, cs.kw, s, pad, ceil_mode);
            const hbn::PoolParams pp{cs.kh, cs.kw, s, s, pad, pad, oh, ow, true};
            const int64_t rows = n * oh * ow;
            hbn::set_isa("scalar");
            std::vector<float> yf(static_cast<size_t>(rows * c));
            hbn::max_pool(x.data(), n, h, w, c, pp, yf.data(), pool);
            std::vector<word_t> want(static_cast<size_t>(rows * words));
            hbn::pack_rows_reference(yf.data(), rows, static_cast<int>(c), c, want.data(), rule.thr.data(), flip);
            for (const std::string& isa : hbn_test::supported_paths()) {
              hbn::set_isa(isa);
              std::vector<word_t> got(want.size() + 8, 0x5a5a5a5a5a5a5a5aull);
              hbn::max_pool_bits(xb.data(), n, h, w, words, pp, or_mask.data(), got.data(), pool);
              CHECK(std::equal(want.begin(), want.end(), got.begin()),
                    "max_pool_bits isa=%s c=%ld k=%dx%d s=%d pad=%d ceil=%d", isa.c_str(), long(c), cs.kh, cs.kw, s,
                    pad, int(ceil_mode));
              CHECK(got[want.size()] == 0x5a5a5a5a5a5a5a5aull, "max_pool_bits wrote past the output");
            }
          }
    }
  }
  hbn::reset_isa();
}

// max_pool_into (a max-pool reading a concat's operands): each operand pooled into its channel
// slice equals pooling the concatenated floats (the scalar max_pool), bit for bit.
void test_max_pool_into() {
  std::mt19937 rng(14);
  hbn::ThreadPool pool(2);
  const int64_t n = 2, h = 9, w = 8;
  for (const auto& [c1, c2] : std::vector<std::pair<int64_t, int64_t>>{{16, 5}, {37, 29}, {64, 70}, {1, 3}}) {
    const int64_t c = c1 + c2;
    const std::vector<float> x = edgy(static_cast<size_t>(n * h * w * c), rng);
    std::vector<float> a(static_cast<size_t>(n * h * w * c1)), b(static_cast<size_t>(n * h * w * c2));
    for (int64_t q = 0; q < n * h * w; ++q) {
      std::copy(x.begin() + q * c, x.begin() + q * c + c1, a.begin() + q * c1);
      std::copy(x.begin() + q * c + c1, x.begin() + (q + 1) * c, b.begin() + q * c2);
    }
    for (int k : {2, 3})
      for (int s : {1, 2})
        for (bool ceil_mode : {false, true}) {
          const int pad = k / 2;
          const int64_t oh = hbn::pool_out_size(h, k, s, pad, ceil_mode), ow = hbn::pool_out_size(w, k, s, pad, ceil_mode);
          const hbn::PoolParams pp{k, k, s, s, pad, pad, oh, ow, true};
          hbn::set_isa("scalar");
          std::vector<float> want(static_cast<size_t>(n * oh * ow * c));
          hbn::max_pool(x.data(), n, h, w, c, pp, want.data(), pool);
          for (const std::string& isa : hbn_test::supported_paths()) {
            hbn::set_isa(isa);
            std::vector<float> got(want.size() + 16, 7.0f);
            hbn::max_pool_into(a.data(), n, h, w, c1, pp, got.data(), c, pool);
            hbn::max_pool_into(b.data(), n, h, w, c2, pp, got.data() + c1, c, pool);
            CHECK(same_bits(got.data(), want.data(), want.size()), "max_pool_into isa=%s c=%ld+%ld k=%d s=%d",
                  isa.c_str(), long(c1), long(c2), k, s);
            CHECK(got[want.size()] == 7.0f, "max_pool_into wrote past the output");
          }
        }
  }
  hbn::reset_isa();
}

void test_add_fused() {
  std::mt19937 rng(12);
  hbn::ThreadPool pool(2);
  for (int64_t c : {1, 5, 16, 24, 64, 100, 256}) {
    const int64_t rows = 37, words = hbn::words_for(c), count = rows * c;
    const std::vector<float> a = edgy(static_cast<size_t>(count), rng), b = edgy(static_cast<size_t>(count), rng);
    const std::vector<Rule> rules = make_rules(5, c, rng);
    std::vector<hbn::PackTarget> targets;
    for (const Rule& r : rules)
      targets.push_back(hbn::make_pack_target(r.thr.data(), r.flip.empty() ? nullptr : r.flip.data(), c));
    for (bool relu : {false, true}) {
      std::vector<float> want_f(static_cast<size_t>(count));
      for (int64_t i = 0; i < count; ++i) {
        const float y = a[i] + b[i];
        want_f[i] = (relu && !(y > 0.0f)) ? 0.0f : y;
      }
      std::vector<std::vector<word_t>> want_b(rules.size(), std::vector<word_t>(rows * words));
      for (size_t q = 0; q < rules.size(); ++q)
        hbn::pack_rows_reference(want_f.data(), rows, static_cast<int>(c), c, want_b[q].data(), rules[q].thr.data(),
                                 rules[q].flip.empty() ? nullptr : rules[q].flip.data());
      for (const std::string& isa : hbn_test::supported_paths()) {
        hbn::set_isa(isa);
        std::vector<float> got_f(want_f.size() + 16, 7.0f);
        hbn::add(a.data(), b.data(), count, relu, got_f.data(), pool);
        CHECK(same_bits(got_f.data(), want_f.data(), want_f.size()), "add isa=%s c=%ld", isa.c_str(), long(c));
        for (int ns : {1, 2, 5}) {
          std::vector<std::vector<word_t>> got_b(ns, std::vector<word_t>(rows * words + 8, ~word_t{0}));
          std::vector<hbn::PackSink> sinks;
          for (int q = 0; q < ns; ++q) sinks.push_back(targets[q].sink(got_b[q].data()));
          std::fill(got_f.begin(), got_f.end(), 7.0f);
          hbn::add_fused(a.data(), b.data(), rows, c, relu, got_f.data(), sinks.data(), ns, pool);
          CHECK(same_bits(got_f.data(), want_f.data(), want_f.size()), "add_fused floats isa=%s c=%ld", isa.c_str(), long(c));
          CHECK(got_f[want_f.size()] == 7.0f, "wrote past the output");
          for (int q = 0; q < ns; ++q) {
            CHECK(std::equal(want_b[q].begin(), want_b[q].end(), got_b[q].begin()),
                  "add_fused bits isa=%s c=%ld relu=%d ns=%d sink=%d", isa.c_str(), long(c), int(relu), ns, q);
            CHECK(got_b[q][rows * words] == ~word_t{0}, "bits past the output");
          }
        }
      }
    }
  }
  hbn::reset_isa();
}

// NCHW (contiguous planes, and a transposed view with a non-unit pixel stride) to packed NHWC
// bits equals converting to NHWC floats and packing them; the small-channel layout path equals
// the generic one.
void test_input_paths() {
  std::mt19937 rng(13);
  hbn::ThreadPool pool(2);
  const int64_t n = 2;
  for (int64_t c : {1, 2, 3, 4, 5, 64, 65, 200})
    for (int64_t hw : {1, 15, 17, 100}) {
      const int64_t h = hw % 5 == 0 ? 5 : 1, w = hw / h, words = hbn::words_for(c);
      const std::vector<float> x = edgy(static_cast<size_t>(n * c * h * w), rng);
      const int64_t contig[4] = {c * h * w, h * w, w, 1};
      // the same tensor stored as N, W, H, C in memory: strides of a permuted view
      std::vector<float> xt(x.size());
      for (int64_t i = 0; i < n; ++i)
        for (int64_t ch = 0; ch < c; ++ch)
          for (int64_t y = 0; y < h; ++y)
            for (int64_t xx = 0; xx < w; ++xx)
              xt[((i * w + xx) * h + y) * c + ch] = x[((i * c + ch) * h + y) * w + xx];
      const int64_t permuted[4] = {c * h * w, 1, c, h * c};
      std::vector<float> nhwc(x.size());
      for (int64_t i = 0; i < n; ++i)
        hbn::transpose_block_reference(x.data() + i * c * h * w, c, h * w, h * w, nhwc.data() + i * h * w * c, c);
      const std::vector<Rule> rules = make_rules(2, c, rng);
      for (const std::string& isa : hbn_test::supported_paths()) {
        hbn::set_isa(isa);
        std::vector<float> got(x.size() + 4, 7.0f);
        hbn::nchw_to_nhwc(x.data(), n, c, h, w, contig, got.data(), pool);
        CHECK(same_bits(got.data(), nhwc.data(), nhwc.size()) && got[nhwc.size()] == 7.0f,
              "nchw_to_nhwc isa=%s c=%ld hw=%ld", isa.c_str(), long(c), long(hw));
        for (const Rule& r : rules) {
          const uint8_t* flip = r.flip.empty() ? nullptr : r.flip.data();
          std::vector<word_t> want(n * h * w * words);
          hbn::pack_rows_reference(nhwc.data(), n * h * w, static_cast<int>(c), c, want.data(), r.thr.data(), flip);
          const hbn::PackTarget t = hbn::make_pack_target(r.thr.data(), flip, c);
          for (int layout = 0; layout < 2; ++layout) {
            std::vector<word_t> bits(want.size() + 8, ~word_t{0});
            hbn::nchw_pack(layout ? xt.data() : x.data(), n, c, h, w, layout ? permuted : contig,
                           t.sink(bits.data()), pool);
            CHECK(std::equal(want.begin(), want.end(), bits.begin()) && bits[want.size()] == ~word_t{0},
                  "nchw_pack isa=%s c=%ld hw=%ld layout=%d", isa.c_str(), long(c), long(hw), layout);
          }
        }
      }
    }
  hbn::reset_isa();
}

}  // namespace

int main() {
  test_max_pool_fused();
  test_max_pool_shapes();
  test_adaptive_avg_pool();
  test_max_pool_bits();
  test_max_pool_into();
  test_add_fused();
  test_input_paths();
  return hbn_test::finish("test_fused_ops");
}

// conv_wbin_q8 (a WeightBin layer on 8-bit input) without Python, so the NEON paths run it under
// qemu too: the sign-bit expansion (qconv/qconv_binw.h) against the bits read one by one, the
// tail check, and hand-built one-op models loaded by the Executor on every ISA path against a
// scalar reference of the op's definition, bit for bit (float output); the loader's refusals.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "hbn/isa.h"
#include "qconv/qconv_binw.h"
#include "runtime/executor.h"
#include "runtime/format.h"
#include "tests/check.h"
#include "tests/model_writer.h"
#include "transform/output_transform.h"

using namespace hbn;
using hbn_test::g_failures;
using hbn_test::Writer;

namespace {

struct Case {
  int n, h, w, ic, oc, k, stride, pad, zero;
  bool relu;
  const char* what;
};

// Canonical bits [OC][KH][KW][words(IC)], bit 1 = -1, from a sign pattern s[o][c][i][j].
std::vector<word_t> pack(const std::vector<int8_t>& s, const ConvGeometry& g) {
  const int64_t words = words_for(g.in_channels);
  std::vector<word_t> bits(static_cast<size_t>(int64_t(g.out_channels) * g.kernel_h * g.kernel_w * words), 0);
  for (int o = 0; o < g.out_channels; ++o)
    for (int c = 0; c < g.in_channels; ++c)
      for (int i = 0; i < g.kernel_h; ++i)
        for (int j = 0; j < g.kernel_w; ++j)
          if (s[((size_t(o) * g.in_channels + c) * g.kernel_h + i) * g.kernel_w + j] < 0)
            bits[((size_t(o) * g.kernel_h + i) * g.kernel_w + j) * words + c / 64] |= word_t(1) << (c % 64);
  return bits;
}

void check_expansion(std::mt19937& rng) {
  for (int ic : {1, 3, 63, 64, 65, 130}) {
    const ConvGeometry g{ic, 7, 3, 2, 1, 1, 0, 0};
    std::vector<int8_t> s(size_t(7) * ic * 6);
    for (auto& v : s) v = (rng() & 1) ? int8_t(-1) : int8_t(1);
    std::vector<word_t> bits = pack(s, g);
    CHECK(sign_bits_to_i8(bits.data(), g) == s, "expansion ic %d", ic);
    CHECK(sign_bits_tail_clear(bits.data(), g), "tail clear ic %d", ic);
    if (ic % 64) {
      bits[bits.size() - 1] |= word_t(1) << 63;
      CHECK(!sign_bits_tail_clear(bits.data(), g), "tail set ic %d", ic);
    }
  }
}

// One op record with mixed i64 / f64 attributes (model_writer's op() writes i64 only).
void op_record(Writer& w, uint32_t type, const std::string& name, std::vector<uint32_t> inputs,
               std::vector<uint32_t> tensors, std::vector<std::pair<uint32_t, int64_t>> iattrs,
               std::vector<std::pair<uint32_t, double>> fattrs) {
  Writer::put<uint32_t>(w.graph, type);
  Writer::put<uint32_t>(w.graph, static_cast<uint32_t>(name.size()));
  w.graph.insert(w.graph.end(), name.begin(), name.end());
  Writer::pad(w.graph, 4);
  Writer::put<uint32_t>(w.graph, static_cast<uint32_t>(inputs.size()));
  for (auto v : inputs) Writer::put<uint32_t>(w.graph, v);
  Writer::put<uint32_t>(w.graph, static_cast<uint32_t>(tensors.size()));
  for (auto t : tensors) Writer::put<uint32_t>(w.graph, t);
  Writer::put<uint32_t>(w.graph, static_cast<uint32_t>(iattrs.size() + fattrs.size()));
  for (auto& [k, v] : iattrs) {
    Writer::put<uint32_t>(w.graph, k);
    Writer::put<uint32_t>(w.graph, 1);
    Writer::put<int64_t>(w.graph, v);
  }
  for (auto& [k, v] : fattrs) {
    Writer::put<uint32_t>(w.graph, k);
    Writer::put<uint32_t>(w.graph, 2);
    Writer::put<double>(w.graph, v);
  }
  ++w.n_ops;
}

std::vector<uint8_t> model(const Case& c, const std::vector<word_t>& bits, const std::vector<float>& scale,
                           const std::vector<float>& bias, double in_scale, int in_channels) {
  Writer w;
  const int64_t words = words_for(in_channels);
  const uint32_t tw = w.bits_tensor(bits, {c.oc, c.k, c.k, words});
  const uint32_t ts = w.tensor(scale, {static_cast<int64_t>(scale.size())});
  const uint32_t tb = w.tensor(bias, {c.oc});
  op_record(w, static_cast<uint32_t>(OpType::conv_wbin_q8), "w", {0}, {tw, ts, tb},
            {{kStrideH, c.stride}, {kStrideW, c.stride}, {kPadH, c.pad}, {kPadW, c.pad},
             {kAct, c.relu ? 1 : 0}, {kInChannels, in_channels}, {kInZero, c.zero}},
            {{kInScale, in_scale}});
  return w.finish(static_cast<uint32_t>(c.ic), static_cast<uint32_t>(c.h), static_cast<uint32_t>(c.w));
}

// The op's definition on NCHW input -> NCHW output.
std::vector<float> reference(const Case& c, const std::vector<float>& x, const std::vector<int8_t>& s,
                             const std::vector<float>& scale, const std::vector<float>& bias, double in_scale) {
  const ConvGeometry g{c.ic, c.oc, c.k, c.k, c.stride, c.stride, c.pad, c.pad};
  const int oh = g.out_h(c.h), ow = g.out_w(c.w);
  const float fs = static_cast<float>(in_scale);
  std::vector<int> q(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const float v = std::nearbyint(x[i] / fs) + static_cast<float>(c.zero);
    q[i] = std::isnan(v) ? 0 : static_cast<int>(std::fmin(255.0f, std::fmax(0.0f, v))) - c.zero;
  }
  std::vector<float> out_scale(c.oc);
  for (int o = 0; o < c.oc; ++o) out_scale[o] = static_cast<float>(in_scale * double(scale[o]));
  OutputTransform t;
  t.scale = out_scale.data();
  t.bias = bias.data();
  t.act = c.relu ? Activation::relu : Activation::none;
  std::vector<float> y(size_t(c.n) * c.oc * oh * ow);
  for (int b = 0; b < c.n; ++b)
    for (int o = 0; o < c.oc; ++o)
      for (int oy = 0; oy < oh; ++oy)
        for (int ox = 0; ox < ow; ++ox) {
          int64_t acc = 0;
          for (int ch = 0; ch < c.ic; ++ch)
            for (int i = 0; i < c.k; ++i)
              for (int j = 0; j < c.k; ++j) {
                const int yy = oy * c.stride - c.pad + i, xx = ox * c.stride - c.pad + j;
                if (yy < 0 || yy >= c.h || xx < 0 || xx >= c.w) continue;
                acc += int64_t(q[((size_t(b) * c.ic + ch) * c.h + yy) * c.w + xx]) *
                       s[((size_t(o) * c.ic + ch) * c.k + i) * c.k + j];
              }
          y[((size_t(b) * c.oc + o) * oh + oy) * ow + ox] =
              apply_transform(t, static_cast<float>(acc), 0, o);
        }
  return y;
}

void check_case(const Case& c, std::mt19937& rng) {
  const ConvGeometry g{c.ic, c.oc, c.k, c.k, c.stride, c.stride, c.pad, c.pad};
  std::vector<int8_t> s(size_t(c.oc) * c.ic * c.k * c.k);
  for (auto& v : s) v = (rng() & 1) ? int8_t(-1) : int8_t(1);
  std::uniform_real_distribution<float> d(-2.5f, 2.5f), ds(-0.05f, 0.05f);
  std::vector<float> scale(c.oc), bias(c.oc), x(size_t(c.n) * c.ic * c.h * c.w);
  for (auto& v : scale) v = ds(rng);
  scale[0] = 0.0f;  // an all-zero channel (alpha = 0)
  for (auto& v : bias) v = d(rng);
  for (auto& v : x) v = d(rng);
  const double in_scale = 0.0173;
  x[0] = static_cast<float>(in_scale) * 0.5f;   // a tie, rounded to even
  x[1] = static_cast<float>(in_scale) * 300.f;  // clamps
  const std::vector<float> want = reference(c, x, s, scale, bias, in_scale);
  const std::vector<uint8_t> bytes = model(c, pack(s, g), scale, bias, in_scale, c.ic);
  const int64_t strides[4] = {int64_t(c.ic) * c.h * c.w, int64_t(c.h) * c.w, c.w, 1};
  for (const std::string& path : hbn_test::supported_paths()) {
    set_isa(path);
    Executor ex(bytes);
    std::vector<float> y(want.size(), NAN);
    ex.run(x.data(), c.n, strides, y.data());
    CHECK(std::memcmp(y.data(), want.data(), y.size() * sizeof(float)) == 0, "%s path %s: outputs differ",
          c.what, path.c_str());
  }
  reset_isa();
}

void expect_refused(const std::vector<uint8_t>& bytes, const char* needle, const char* what) {
  try {
    Executor ex(bytes);
    CHECK(false, "%s: loaded", what);
  } catch (const FormatError& e) {
    CHECK(std::strstr(e.what(), needle) != nullptr, "%s: message '%s' lacks '%s'", what, e.what(), needle);
  }
}

void check_refusals() {
  const Case c{1, 6, 6, 3, 4, 3, 1, 1, 3, false, "bad"};
  const ConvGeometry g{3, 4, 3, 3, 1, 1, 1, 1};
  std::vector<int8_t> s(4 * 3 * 9, 1);
  std::vector<word_t> bits = pack(s, g);
  const std::vector<float> one(4, 1.0f), zero(4, 0.0f);
  Executor ok(model(c, bits, one, zero, 0.5, 3));  // the base file is valid
  std::vector<word_t> tail = bits;
  tail[5] |= word_t(1) << 40;
  expect_refused(model(c, tail, one, zero, 0.5, 3), "bits past in_channels (3) in a word must be 0", "tail");
  expect_refused(model(c, bits, one, zero, -1.0, 3), "in_scale must be a positive finite", "in_scale");
  expect_refused(model(c, bits, std::vector<float>(4, 1e30f), zero, 1e30, 3), "overflows float32", "overflow");
  expect_refused(model(c, bits, std::vector<float>(5, 1.0f), zero, 0.5, 3), "scale", "scale shape");
  expect_refused(model(c, bits, one, zero, 0.5, 5), "expects 5 input channels", "in_channels");
  const Case big{1, 1, 1, 65537, 2, 1, 1, 0, 0, false, "big"};
  std::vector<word_t> bb(size_t(2) * words_for(65537), 0);
  expect_refused(model(big, bb, std::vector<float>(2, 1.0f), std::vector<float>(2, 0.0f), 1.0, 65537),
                 "exceeds 65536", "K");
}

}  // namespace

int main() {
  std::mt19937 rng(77);
  check_expansion(rng);
  const Case cases[] = {
      {1, 9, 8, 16, 32, 3, 1, 1, 0, true, "3x3 ic16"},
      {2, 11, 9, 1, 5, 5, 2, 2, 0, false, "ic1 5x5 s2 batch2"},
      {1, 7, 9, 65, 33, 3, 2, 0, 255, true, "ic65 s2"},
      {3, 5, 6, 70, 17, 1, 1, 0, 7, false, "1x1 ic70 batch3"},
      {1, 6, 6, 128, 16, 1, 1, 0, 0, true, "1x1 in place"},
      {1, 7, 7, 64, 40, 1, 2, 0, 3, false, "1x1 s2"},
      {1, 4, 5, 256, 20, 3, 1, 1, 0, true, "3x3 ic256"},
  };
  for (const Case& c : cases) check_case(c, rng);
  check_refusals();
  return hbn_test::finish("test_qconv_binw");
}

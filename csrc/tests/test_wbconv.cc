// WBConv2d (binary weights, float activations) on every compiled path and both sign-decoding
// strategies against wbconv2d_reference, with the transform, partial tiles and thread counts.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "fconv/conv_f32.h"
#include "hbn/isa.h"
#include "tests/check.h"
#include "tests/conv_case.h"
#include "bitpack/binarize.h"
#include "wbconv/lut.h"
#include "wbconv/wb_pack.h"
#include "wbconv/wbconv.h"

using namespace hbn;

namespace {

using hbn_test::g_failures;
using hbn_test::random_floats;

using hbn_test::ConvCase;
using hbn_test::tolerance;

void check_case(const ConvCase& c, std::mt19937& rng) {
  const ConvGeometry g = c.geometry();
  const int oh = g.out_h(c.h), ow = g.out_w(c.w);
  const int64_t M = static_cast<int64_t>(c.n) * oh * ow, K = static_cast<int64_t>(c.kh) * c.kw * c.ic;
  auto x = random_floats(static_cast<size_t>(c.n) * c.h * c.w * c.ic, rng);
  auto wf = random_floats(static_cast<size_t>(c.oc) * c.ic * c.kh * c.kw, rng);
  wf[0] = 0.0f;  // sign(0) = +1
  if (wf.size() > 1) wf[1] = -0.0f;
  const std::vector<word_t> bits = binarize_oihw(g, wf.data());
  // Tail bits past IC must be zero in the canonical layout.
  if (c.ic % 64) {
    bool tails_zero = true;
    const int64_t words = words_for(c.ic);
    for (size_t i = words - 1; i < bits.size(); i += words) tails_zero &= (bits[i] >> (c.ic % 64)) == 0;
    CHECK(tails_zero, "binarize_oihw left tail bits set");
  }
  auto scale = random_floats(c.oc, rng, 0.5f, 2.0f);
  auto bias = random_floats(c.oc, rng);
  auto pscale = random_floats(M, rng, 0.5f, 1.5f);
  auto resid = random_floats(static_cast<size_t>(M) * (c.oc + 3), rng);
  OutputTransform t;
  t.scale = scale.data(); t.bias = bias.data(); t.pixel_scale = pscale.data();
  t.act = Activation::relu;
  t.residual = resid.data();  // a fused residual add, rows wider than OC, then ReLU
  t.residual_ld = c.oc + 3;
  t.residual_act = Activation::relu;
  std::vector<float> ref(M * c.oc);
  wbconv2d_reference(g, x.data(), c.n, c.h, c.w, bits.data(), ref.data());
  // Cross-check the bit reference against the float reference on the +-1 weights.
  std::vector<float> wsign(wf.size()), ref_f(M * c.oc);
  for (size_t i = 0; i < wf.size(); ++i) wsign[i] = wf[i] < 0.0f ? -1.0f : 1.0f;
  conv2d_f32_reference(g, x.data(), c.n, c.h, c.w, wsign.data(), ref_f.data());
  CHECK(std::memcmp(ref.data(), ref_f.data(), ref.size() * sizeof(float)) == 0,
        "wbconv2d_reference disagrees with conv2d_f32_reference on sign(w)");
  for (int64_t m = 0; m < M; ++m)
    for (int oc = 0; oc < c.oc; ++oc) ref[m * c.oc + oc] = apply_transform(t, ref[m * c.oc + oc], m, oc);

  WBConv2d conv(g, bits.data());
  const WBConv2d conv_f = WBConv2d::from_float(g, wf.data());
  conv.set_algo(ConvAlgo::direct);  // the largest workspace of the three algos
  const size_t ws_bytes = conv.workspace_bytes(c.n, c.h, c.w);
  void* ws = std::aligned_alloc(kAlignment, (ws_bytes + kAlignment) / kAlignment * kAlignment);
  ThreadPool pool1(1), pool2(2);
  for (const std::string& isa : hbn_test::supported_paths()) {
    set_isa(isa);
    for (int combo = 0; combo < 12; ++combo) {
      const WBStrategy s = static_cast<WBStrategy>(combo % 4);
      const ConvAlgo algo = static_cast<ConvAlgo>(combo / 4);
      conv.set_strategy(s);
      conv.set_algo(algo);
      std::vector<float> out1(M * c.oc, NAN), out2(M * c.oc, NAN);
      conv.run(x.data(), c.n, c.h, c.w, t, out1.data(), ws, pool1);
      conv.run(x.data(), c.n, c.h, c.w, t, out2.data(), ws, pool2);
      bool ok = true;
      for (size_t i = 0; i < ref.size(); ++i) ok &= std::fabs(out1[i] - ref[i]) <= tolerance(K, 3.f);
      CHECK(ok, "wbconv %s strategy %d algo %d n%d %dx%d ic%d oc%d k%dx%d s%d,%d p%d,%d: mismatch",
            isa.c_str(), static_cast<int>(s), static_cast<int>(algo), c.n, c.h, c.w, c.ic, c.oc, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw);
      CHECK(std::memcmp(out1.data(), out2.data(), out1.size() * sizeof(float)) == 0,
            "wbconv %s: 1 vs 2 threads differ", isa.c_str());
    }
    std::vector<float> out3(M * c.oc, NAN);
    conv_f.run(x.data(), c.n, c.h, c.w, t, out3.data(), ws, pool1);
    bool ok = true;
    for (size_t i = 0; i < ref.size(); ++i) ok &= std::fabs(out3[i] - ref[i]) <= tolerance(K, 3.f);
    CHECK(ok, "WBConv2d::from_float %s mismatch", isa.c_str());
  }
  reset_isa();
  std::free(ws);
}

// bit_panels_from_lut inverts pack_lut_panels for every LUT layout (partial panels, K off the
// steps), whether or not this CPU runs the row.
void check_lut_roundtrip(std::mt19937& rng) {
  const auto& luts = sgemm_detail::lut_kernels();
  const int64_t shapes[][2] = {{1, 1}, {7, 5}, {33, 129}, {100, 300}, {301, 257}};
  for (const auto& [K, N] : shapes) {
    std::vector<uint32_t> bits(static_cast<size_t>((N + 31) / 32 * K));
    for (uint32_t& w : bits) w = static_cast<uint32_t>(rng());
    // Columns past N are not stored: clear them in the last panel.
    if (N % 32)
      for (int64_t k = 0; k < K; ++k) bits[static_cast<size_t>((N / 32) * K + k)] &= (1u << (N % 32)) - 1;
    for (int r = 0; r < luts.size(); ++r) {
      const sgemm_detail::LutLayout& L = luts.row(r).kernel.layout;
      const std::vector<uint32_t> lut = pack_lut_panels(bits.data(), K, N, L);
      CHECK(bit_panels_from_lut(lut.data(), K, N, L) == bits, "LUT row %d: K %lld N %lld does not round-trip",
            r, static_cast<long long>(K), static_cast<long long>(N));
    }
  }
}

// A conv keeps one packed form from construction; built on one path and run on another it
// builds that path's form (LUT panels of another row, or bit panels back from LUT panels) on
// first use, once, also when several threads run it at the same moment, and gives results
// bit-identical to a conv built on that path.
void check_lazy_lut_packing(std::mt19937& rng) {
  const ConvCase c{3, 9, 10, 45, 150, 3, 3, 1, 2, 0, 1};
  const ConvGeometry g = c.geometry();
  const int64_t M = static_cast<int64_t>(c.n) * g.out_h(c.h) * g.out_w(c.w);
  const auto x = random_floats(static_cast<size_t>(c.n) * c.h * c.w * c.ic, rng);
  const auto wf = random_floats(static_cast<size_t>(c.oc) * c.ic * c.kh * c.kw, rng);
  const std::vector<word_t> bits = binarize_oihw(g, wf.data());
  const auto& luts = sgemm_detail::lut_kernels();
  const int64_t K = static_cast<int64_t>(c.kh) * c.kw * c.ic;
  auto panel_bytes = [&](int row) {
    const sgemm_detail::LutLayout& L = luts.row(row).kernel.layout;
    // Byte-index (NEON) panels carry one padding word step (wb_pack.cc).
    return static_cast<size_t>((c.oc + L.nr - 1) / L.nr * ((K + L.kstep() - 1) / L.kstep()) * L.nr +
                               (L.index_bytes ? L.nr : 0)) * 4;
  };
  const OutputTransform t;
  const std::vector<std::string> paths = hbn_test::supported_paths();
  for (const std::string& built_on : paths) {
    set_isa(built_on);
    const int built_row = luts.selected();
    WBConv2d conv(g, bits.data());
    conv.set_strategy(WBStrategy::lut);  // every row that has a LUT kernel runs it
    // One form of the signs only: the selected row's LUT panels where its kernel takes every
    // GEMM, else the bit panels.
    const size_t bit_bytes = static_cast<size_t>((c.oc + 31) / 32 * K) * 4;
    const bool keeps_lut = built_row >= 0 && luts.row(built_row).kernel.always;
    CHECK(conv.packed_bytes() == (keeps_lut ? panel_bytes(built_row) : bit_bytes),
          "wbconv built on %s keeps %zu packed bytes", built_on.c_str(), conv.packed_bytes());
    for (const std::string& run_on : paths) {
      set_isa(run_on);
      WBConv2d fresh(g, bits.data());
      fresh.set_strategy(WBStrategy::lut);
      const size_t ws_bytes = conv.workspace_bytes(c.n, c.h, c.w);
      std::vector<float> want(M * c.oc, NAN);
      {
        void* ws = std::aligned_alloc(kAlignment, (ws_bytes + kAlignment) / kAlignment * kAlignment);
        ThreadPool pool(1);
        fresh.run(x.data(), c.n, c.h, c.w, t, want.data(), ws, pool);
        std::free(ws);
      }
      // Four threads hit the lazily packed row at once, each with its own pool and workspace.
      constexpr int kThreads = 4;
      std::vector<std::vector<float>> got(kThreads, std::vector<float>(M * c.oc, NAN));
      std::vector<std::thread> threads;
      for (int i = 0; i < kThreads; ++i)
        threads.emplace_back([&, i] {
          void* ws = std::aligned_alloc(kAlignment, (ws_bytes + kAlignment) / kAlignment * kAlignment);
          ThreadPool pool(1);
          conv.run(x.data(), c.n, c.h, c.w, t, got[i].data(), ws, pool);
          std::free(ws);
        });
      for (std::thread& th : threads) th.join();
      for (int i = 0; i < kThreads; ++i)
        CHECK(std::memcmp(got[i].data(), want.data(), want.size() * sizeof(float)) == 0,
              "wbconv built on %s, run on %s (thread %d): differs from one built there",
              built_on.c_str(), run_on.c_str(), i);
      const int run_row = luts.selected();
      CHECK(run_row < 0 || conv.packed_bytes() >= panel_bytes(run_row),
            "wbconv run on %s without its LUT panels", run_on.c_str());
    }
  }
  reset_isa();
}

}  // namespace

int main() {
  std::mt19937 rng(99);
  const ConvCase cases[] = {
      {1, 5, 5, 1, 1, 1, 1, 1, 1, 0, 0},      {2, 7, 9, 3, 17, 3, 3, 1, 1, 1, 1},
      {1, 9, 8, 63, 64, 3, 3, 2, 2, 1, 1},    {1, 6, 7, 64, 65, 1, 1, 1, 1, 0, 0},
      {2, 5, 5, 65, 33, 5, 5, 1, 1, 2, 2},    {1, 11, 10, 3, 16, 7, 7, 2, 2, 2, 2},
      {1, 23, 23, 2, 20, 11, 11, 4, 4, 2, 2}, {1, 6, 6, 200, 31, 3, 3, 1, 1, 0, 0}, {2, 2, 3, 5, 7, 5, 5, 1, 1, 2, 2},
      {1, 3, 3, 300, 9, 3, 3, 1, 1, 1, 1},    {1, 1, 1, 1000, 70, 1, 1, 1, 1, 0, 0},  // fc, batch 1
      {5, 1, 1, 129, 96, 1, 1, 1, 1, 0, 0},   // fc, batch 5
      {1, 16, 16, 16, 32, 3, 3, 1, 1, 1, 1},  // several row blocks
      {2, 31, 61, 3, 40, 7, 7, 2, 2, 3, 3},   // first-layer shape: rows off every tile height
      {2, 5, 7, 40, 300, 3, 3, 1, 1, 1, 1},   // LUT: partial 128-column panel, K off octets
      {5, 1, 1, 301, 257, 1, 1, 1, 1, 0, 0},  // LUT: linear, K off the 4-step groups
  };
  for (const auto& c : cases) check_case(c, rng);
  check_lut_roundtrip(rng);
  check_lazy_lut_packing(rng);
  return hbn_test::finish("test_wbconv");
}

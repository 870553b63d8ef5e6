// Conv2dF32 and Sgemm on every compiled path against the double-accumulation references,
// including the fused transform, partial tiles, K blocking and thread-count independence.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "fconv/conv_f32.h"
#include "hbn/isa.h"
#include "tests/check.h"
#include "tests/conv_case.h"
#include "fconv/sgemm.h"

using namespace hbn;

namespace {

using hbn_test::g_failures;
using hbn_test::random_floats;

struct AlignedBuf {
  explicit AlignedBuf(size_t bytes) : p(std::aligned_alloc(kAlignment, (bytes + kAlignment) / kAlignment * kAlignment)) {}
  ~AlignedBuf() { std::free(p); }
  void* p;
};

using hbn_test::ConvCase;
using hbn_test::tolerance;

void check_conv(const ConvCase& c, bool with_transform, ConvAlgo algo, std::mt19937& rng) {
  const ConvGeometry g = c.geometry();
  const int oh = g.out_h(c.h), ow = g.out_w(c.w);
  const int64_t M = static_cast<int64_t>(c.n) * oh * ow, K = static_cast<int64_t>(c.kh) * c.kw * c.ic;
  auto x = random_floats(static_cast<size_t>(c.n) * c.h * c.w * c.ic, rng);
  auto wt = random_floats(static_cast<size_t>(c.oc) * c.ic * c.kh * c.kw, rng);
  auto scale = random_floats(c.oc, rng, 0.5f, 2.0f);
  auto bias = random_floats(c.oc, rng);
  auto pscale = random_floats(M, rng, 0.5f, 1.5f);
  // A fused residual add (rows wider than OC), with a ReLU after it.
  auto resid = random_floats(static_cast<size_t>(M) * (c.oc + 5), rng);
  OutputTransform t;
  float gain = 1.0f;
  if (with_transform) {
    t.scale = scale.data(); t.bias = bias.data(); t.pixel_scale = pscale.data();
    t.act = Activation::relu;
    t.residual = resid.data();
    t.residual_ld = c.oc + 5;
    t.residual_act = Activation::relu;
    gain = 3.0f;
  }
  std::vector<float> ref(M * c.oc);
  conv2d_f32_reference(g, x.data(), c.n, c.h, c.w, wt.data(), ref.data());
  for (int64_t m = 0; m < M; ++m)
    for (int oc = 0; oc < c.oc; ++oc) ref[m * c.oc + oc] = apply_transform(t, ref[m * c.oc + oc], m, oc);

  Conv2dF32 conv(g, wt.data());
  conv.set_algo(algo);
  AlignedBuf ws(conv.workspace_bytes(c.n, c.h, c.w));
  ThreadPool pool1(1), pool2(2);
  for (const std::string& isa : hbn_test::supported_paths()) {
    set_isa(isa);
    std::vector<float> out1(M * c.oc, NAN), out2(M * c.oc, NAN);
    conv.run(x.data(), c.n, c.h, c.w, t, out1.data(), ws.p, pool1);
    conv.run(x.data(), c.n, c.h, c.w, t, out2.data(), ws.p, pool2);
    float worst = 0.f;
    for (size_t i = 0; i < ref.size(); ++i) worst = std::fmax(worst, std::fabs(out1[i] - ref[i]));
    if (!(worst <= tolerance(K, gain)))
      worst = NAN;
    CHECK(!std::isnan(worst), "conv %s algo%d n%d %dx%d ic%d oc%d k%dx%d s%d,%d p%d,%d tr%d: error too large",
          isa.c_str(), static_cast<int>(algo), c.n, c.h, c.w, c.ic, c.oc, c.kh, c.kw, c.sh, c.sw,
          c.ph, c.pw, with_transform);
    CHECK(std::memcmp(out1.data(), out2.data(), out1.size() * sizeof(float)) == 0,
          "conv %s: 1 vs 2 threads differ (ic%d oc%d)", isa.c_str(), c.ic, c.oc);
  }
  reset_isa();
}

void check_sgemm(int64_t M, int64_t N, int64_t K, std::mt19937& rng) {
  auto a = random_floats(M * K, rng), b = random_floats(K * N, rng);
  auto bias = random_floats(N, rng);
  OutputTransform t;
  t.bias = bias.data();
  std::vector<float> ref(M * N);
  sgemm_reference(M, N, K, a.data(), b.data(), t, ref.data());
  Sgemm gemm(K, N, b.data(), N);
  AlignedBuf ws(Sgemm::workspace_bytes());
  ThreadPool pool(2);
  for (const std::string& isa : hbn_test::supported_paths()) {
    set_isa(isa);
    // ldc > N: the kernel must leave the gap alone.
    const int64_t ldc = N + 3;
    std::vector<float> c(M * ldc, 7.0f);
    gemm.run(M, a.data(), K, t, c.data(), ldc, ws.p, pool);
    bool ok = true, gap_ok = true;
    for (int64_t m = 0; m < M; ++m) {
      for (int64_t n = 0; n < N; ++n)
        if (!(std::fabs(c[m * ldc + n] - ref[m * N + n]) <= tolerance(K, 1.f))) ok = false;
      for (int64_t n = N; n < ldc; ++n) gap_ok &= c[m * ldc + n] == 7.0f;
    }
    CHECK(ok, "sgemm %s M%lld N%lld K%lld mismatch", isa.c_str(), (long long)M, (long long)N, (long long)K);
    CHECK(gap_ok, "sgemm %s wrote outside the C tile", isa.c_str());
  }
  reset_isa();
}

}  // namespace

int main() {
  std::mt19937 rng(1234);
  const ConvCase cases[] = {
      {1, 5, 5, 1, 1, 1, 1, 1, 1, 0, 0},     {2, 7, 9, 3, 17, 3, 3, 1, 1, 1, 1},
      {1, 9, 8, 63, 64, 3, 3, 2, 2, 1, 1},   {1, 6, 7, 64, 65, 1, 1, 1, 1, 0, 0},
      {2, 5, 5, 65, 33, 5, 5, 1, 1, 2, 2},   {1, 11, 10, 3, 16, 7, 7, 2, 2, 2, 2},
      {1, 23, 23, 3, 20, 11, 11, 4, 4, 2, 2}, {1, 6, 6, 200, 31, 3, 3, 1, 1, 0, 0}, {2, 2, 3, 5, 7, 5, 5, 1, 1, 2, 2},
      {3, 4, 4, 37, 64, 1, 1, 2, 2, 0, 0},   {1, 5, 4, 16, 40, 3, 1, 1, 2, 1, 0},
      {1, 3, 3, 300, 9, 3, 3, 1, 1, 1, 1},  // K = 2700: several K blocks on every path
      {2, 1, 1, 513, 100, 1, 1, 1, 1, 0, 0},  // linear layer, batch 2
      {1, 1, 1, 700, 70, 1, 1, 1, 1, 0, 0},   // linear layer, batch 1
      // First layers (the direct path's home): rows not a multiple of any tile height, kernel
      // rows over several K blocks, rectangular kernels and strides.
      {2, 31, 61, 3, 40, 7, 7, 2, 2, 3, 3},  {1, 45, 50, 1, 33, 15, 15, 3, 3, 0, 0},
      {1, 20, 33, 3, 64, 5, 3, 1, 2, 2, 1},
  };
  for (const auto& c : cases)
    for (ConvAlgo algo : {ConvAlgo::automatic, ConvAlgo::im2col, ConvAlgo::direct}) {
      check_conv(c, false, algo, rng);
      check_conv(c, true, algo, rng);
    }
  check_sgemm(1, 1, 1, rng);
  check_sgemm(29, 33, 129, rng);
  check_sgemm(100, 64, 300, rng);
  check_sgemm(3, 200, 1000, rng);
  return hbn_test::finish("test_conv_f32");
}

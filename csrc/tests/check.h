// The few helpers every C++ unit test needs (no test framework dependency: each test is a plain
// executable that ctest runs and judges by its exit code), and the ISA / kernel-table loops
// every kernel test runs its checks under.
#pragma once
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "hbn/isa.h"
#include "hbn/kernel_table.h"
#include "transform/output_transform.h"

namespace hbn_test {

inline int g_failures = 0;

// Reports a failed check (printf-style message) and carries on, so one run lists every failure.
#define CHECK(cond, ...)                                            \
  do {                                                              \
    if (!(cond)) {                                                  \
      ++hbn_test::g_failures;                                       \
      std::fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);     \
      std::fprintf(stderr, __VA_ARGS__);                            \
      std::fprintf(stderr, "\n");                                   \
    }                                                               \
  } while (0)

inline std::vector<float> random_floats(size_t n, std::mt19937& rng, float lo = -1.f,
                                        float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// The ISA paths this CPU can run, slowest first (each test checks every one of them).
inline std::vector<std::string> supported_paths() {
  std::vector<std::string> out;
  for (const std::string& p : hbn::isa_paths())
    if (hbn::isa_supported(p)) out.push_back(p);
  return out;
}

// Which test executable covers which kernel families: every family of hbn::kernel_families()
// must be listed (test_kernel_tables checks that), and each test's finish() fails unless every
// supported row of its families was dispatched during its run. So no row goes untested.
inline const std::vector<std::pair<const char*, const char*>>& family_tests() {
  static const std::vector<std::pair<const char*, const char*>> map{
      {"bconv", "test_bconv"},     {"peak_binary", "test_bconv"}, {"peak_fma", "test_bconv"},
      {"bitpack", "test_bitpack"}, {"sgemm", "test_conv_f32"},    {"wbconv_lut", "test_wbconv"},
      {"ops", "test_fused_ops"},   {"transpose", "test_transpose"},  {"qgemm", "test_qconv"},
      {"peak_int8", "test_qconv"},
  };
  return map;
}

// Runs body(row name) once per supported row of the family, that row forced (so rows no ISA
// path selects, e.g. AVX2's second bconv formulation, run too).
template <class F>
void for_each_row(const hbn::KernelFamily& family, F body) {
  for (int i = 0; i < family.size(); ++i) {
    if (!family.entry_supported(i)) continue;
    family.force(family.entry_name(i));
    body(family.entry_name(i));
  }
  family.release();
}

// The exit code of a test's main(): non-zero when any CHECK failed or a supported row of a
// family this test covers (family_tests) was never dispatched.
inline int finish(const char* name) {
  std::printf("%s: paths tested:", name);
  for (const std::string& p : supported_paths()) std::printf(" %s", p.c_str());
  std::printf("\n");
  for (const auto& [family, test] : family_tests()) {
    if (std::strcmp(test, name) != 0) continue;
    const hbn::KernelFamily* f = hbn::find_kernel_family(family);
    if (!f) {
      CHECK(false, "%s: family %s is not in kernel_families()", name, family);
      continue;
    }
    for (int i = 0; i < f->size(); ++i) {
      if (!f->entry_supported(i)) continue;
      CHECK(f->exercised(i), "%s: kernel %s/%s was never run", name, family, f->entry_name(i));
      if (f->exercised(i)) std::printf("%s: ran %s/%s\n", name, family, f->entry_name(i));
    }
  }
  if (g_failures) {
    std::fprintf(stderr, "%s: %d check(s) failed\n", name, g_failures);
    return 1;
  }
  std::printf("%s: ok\n", name);
  return 0;
}

// Random per-channel output transforms for the binary-conv tests: no transform, scale + bias +
// ReLU, and the same writing threshold bits (random flips). Draws per channel, in this order:
// scale, bias, threshold (uniform in [-1, 1) times the given magnitudes), flip.
struct RandomTransforms {
  std::vector<float> scale, bias, thr;
  std::vector<uint8_t> flip;
  hbn::OutputTransform plain, full, bits;
  template <class Rng>
  RandomTransforms(int oc, Rng& rng, float scale_mag, float bias_mag, float thr_mag)
      : scale(oc), bias(oc), thr(oc), flip(oc) {
    std::uniform_real_distribution<float> ud(-1.0f, 1.0f);
    for (int j = 0; j < oc; ++j) {
      scale[j] = ud(rng) * scale_mag;
      bias[j] = ud(rng) * bias_mag;
      thr[j] = ud(rng) * thr_mag;
      flip[j] = static_cast<uint8_t>(rng() % 2);
    }
    full.scale = scale.data();
    full.bias = bias.data();
    full.act = hbn::Activation::relu;
    bits = full;
    bits.out_threshold = thr.data();
    bits.out_flip = flip.data();
  }
  RandomTransforms(const RandomTransforms&) = delete;  // the transforms point into the vectors
};

}  // namespace hbn_test

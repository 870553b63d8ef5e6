// The few helpers every C++ unit test needs (no test framework dependency: each test is a plain
// executable that ctest runs and judges by its exit code).
#pragma once
#include <cstdio>
#include <random>
#include <vector>

#include "hbn/isa.h"

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

// The compiled kernel paths this CPU can run (each test checks every one of them).
inline std::vector<hbn::Isa> compiled_isas() {
  std::vector<hbn::Isa> out;
  for (hbn::Isa i : {hbn::Isa::scalar, hbn::Isa::avx2, hbn::Isa::avx512, hbn::Isa::neon})
    if (hbn::isa_supported(i)) out.push_back(i);
  return out;
}

// The exit code of a test's main(): non-zero when any CHECK failed.
inline int finish(const char* name) {
  std::printf("%s: paths tested:", name);
  for (hbn::Isa i : compiled_isas()) std::printf(" %s", hbn::isa_name(i));
  std::printf("\n");
  if (g_failures) {
    std::fprintf(stderr, "%s: %d check(s) failed\n", name, g_failures);
    return 1;
  }
  std::printf("%s: ok\n", name);
  return 0;
}

}  // namespace hbn_test

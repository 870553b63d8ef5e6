// The few helpers every C++ unit test needs (no test framework dependency: each test is a plain
// executable that ctest runs and judges by its exit code).
#pragma once
#include <cstdio>
#include <random>
#include <vector>

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

// The exit code of a test's main(): non-zero when any CHECK failed.
inline int finish(const char* name) {
  if (g_failures) {
    std::fprintf(stderr, "%s: %d check(s) failed\n", name, g_failures);
    return 1;
  }
  std::printf("%s: ok\n", name);
  return 0;
}

}  // namespace hbn_test

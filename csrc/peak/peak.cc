#include "peak/peak.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "bconv/bconv_kernels.h"  // popcount64: the portable kernel's popcount
#include "peak/peak_impl.h"

namespace hbn {
namespace detail {

// The portable loops. The empty asm statements claim to modify the operands every iteration,
// so the compiler can neither hoist the work out of the loop nor vectorize the chains away.
// The portable binary loop has the portable kernel's shape (4 x 4 accumulators over words
// reloaded every iteration) so the compiler vectorizes both alike for the baseline ISA.
static double binary_scalar(int64_t iters) {
  word_t x[4] = {0x0123456789abcdefULL, 0xfedcba9876543210ULL, 0x1111222233334444ULL, 0x5555666677778888ULL};
  word_t w[4] = {0x5555aaaa3333ccccULL, 0x0f0f0f0ff0f0f0f0ULL, 0x1111222244448888ULL, 0x7777eeee1111bbbbULL};
  uint32_t a[4][4] = {};
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : : "r"(x), "r"(w) : "memory");  // x, w may have changed: reload them
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) a[i][j] += popcount64(x[i] ^ w[j]);
  }
  uint64_t s = 0;
  for (auto& r : a)
    for (uint32_t v : r) s += v;
  return static_cast<double>(s);
}

static double fma_scalar(int64_t iters) {
  float x0 = 1.0001f, x1 = 0.9999f, w = 0.5f;
  float a[8] = {};
  for (int64_t it = 0; it < iters; ++it) {
#if defined(__x86_64__) || defined(__i386__)
    asm volatile("" : "+x"(x0), "+x"(x1), "+x"(w));
#elif defined(__aarch64__)
    asm volatile("" : "+w"(x0), "+w"(x1), "+w"(w));
#endif
    for (int j = 0; j < 8; ++j) a[j] += (j & 1 ? x1 : x0) * w;
  }
  float s = 0;
  for (float v : a) s += v;
  return s;
}

PeakLoop peak_binary_scalar() { return {binary_scalar, 16.0 * 64}; }
PeakLoop peak_fma_scalar() { return {fma_scalar, 8.0}; }

}  // namespace detail

namespace {

volatile double g_sink;

// Best rate over many short (~1 ms) timed repetitions: on a shared machine (or a busy SMT
// sibling) a long run measures the neighbours too, while the fastest short window is the
// core's own ceiling, measured the same way the kernels' best-of-N timings are.
double measure(const detail::PeakLoop& loop, double seconds) {
  using clock = std::chrono::steady_clock;
  seconds = std::max(seconds, 0.01);
  const double window = 1e-3;
  int64_t iters = 1 << 10;
  double best = 0.0, spent = 0.0;
  while (spent < seconds) {
    const auto t0 = clock::now();
    g_sink = g_sink + loop.fn(iters);
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    spent += dt;
    if (dt < window / 2) {  // calibrating: grow towards the window length
      iters = dt > 1e-7 ? static_cast<int64_t>(static_cast<double>(iters) * window / dt) + 1 : iters * 16;
      continue;
    }
    best = std::max(best, loop.macs_per_iter * static_cast<double>(iters) / dt);
  }
  return best;
}

// The rows a path runs: the best row for its features and every row requiring the same
// features (AVX2's two binary formulations), so a path's peak is the better of its loops.
double best_of_path(const KernelTable<detail::PeakLoop>& table, const std::string& path, double seconds) {
  FeatureMask mask;
  if (!parse_isa(path, &mask)) throw std::invalid_argument("unknown ISA path: " + path);
  if (!isa_supported(path)) throw std::invalid_argument("ISA " + path + " is not supported here");
  const int best = table.best_for(mask);
  std::vector<int> rows;
  for (int i = 0; i < table.size(); ++i)
    if (table.entry_requires(i) == table.entry_requires(best)) rows.push_back(i);
  double rate = 0.0;
  for (int i : rows) rate = std::max(rate, measure(table.use(i), seconds / static_cast<double>(rows.size())));
  return rate;
}

}  // namespace

double peak_binary_variant(const char* name, double seconds) {
  const KernelTable<detail::PeakLoop>& table = detail::peak_binary_loops();
  const int i = table.find(name);
  if (i < 0 || !table.entry_supported(i))
    throw std::invalid_argument(std::string("unknown or unavailable peak loop: ") + name);
  return measure(table.use(i), seconds);
}

double peak_binary_macs(const std::string& path, double seconds) {
  return best_of_path(detail::peak_binary_loops(), path, seconds);
}

double peak_fma_macs(const std::string& path, double seconds) {
  return best_of_path(detail::peak_fma_loops(), path, seconds);
}

double peak_int8_macs(const std::string& path, double seconds) {
  return best_of_path(detail::peak_int8_loops(), path, seconds);
}

}  // namespace hbn

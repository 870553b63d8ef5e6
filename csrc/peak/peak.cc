#include "peak/peak.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>

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

void require(Isa isa) {
  if (!isa_supported(isa))
    throw std::invalid_argument(std::string("ISA ") + isa_name(isa) + " is not supported here");
}

}  // namespace

double peak_binary_variant(const char* name, double seconds) {
  const std::string n = name;
  if (n == "scalar") return measure(detail::peak_binary_scalar(), seconds);
#if defined(HBN_X86)
  if (n == "avx512") return require(Isa::avx512), measure(detail::peak_binary_avx512(), seconds);
  if (n == "avx2_lut") return require(Isa::avx2), measure(detail::peak_binary_avx2_lut(), seconds);
  if (n == "avx2_popcnt") return require(Isa::avx2), measure(detail::peak_binary_avx2_popcnt(), seconds);
#endif
#if defined(HBN_ARM64)
  if (n == "neon") return require(Isa::neon), measure(detail::peak_binary_neon(), seconds);
#endif
  throw std::invalid_argument("unknown or unavailable peak loop: " + n);
}

double peak_binary_macs(Isa isa, double seconds) {
  require(isa);
  if (isa == Isa::avx2)
    return std::max(peak_binary_variant("avx2_lut", seconds / 2),
                    peak_binary_variant("avx2_popcnt", seconds / 2));
  return peak_binary_variant(isa_name(isa), seconds);
}

double peak_fma_macs(Isa isa, double seconds) {
  require(isa);
  switch (isa) {
#if defined(HBN_X86)
    case Isa::avx512: return measure(detail::peak_fma_avx512(), seconds);
    case Isa::avx2: return measure(detail::peak_fma_avx2(), seconds);
#endif
#if defined(HBN_ARM64)
    case Isa::neon: return measure(detail::peak_fma_neon(), seconds);
#endif
    default: return measure(detail::peak_fma_scalar(), seconds);
  }
}

}  // namespace hbn

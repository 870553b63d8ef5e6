// Internal: the per-ISA loops behind peak.h. Each runs `iters` iterations and returns a
// checksum; macs_per_iter says how much work one iteration is.
#pragma once
#include <cstdint>

namespace hbn {
namespace detail {

struct PeakLoop {
  double (*fn)(int64_t iters);
  double macs_per_iter;
};

PeakLoop peak_binary_scalar();
PeakLoop peak_fma_scalar();
PeakLoop peak_binary_avx512();
PeakLoop peak_fma_avx512();
PeakLoop peak_binary_avx2_lut();
PeakLoop peak_binary_avx2_popcnt();
PeakLoop peak_fma_avx2();
PeakLoop peak_binary_neon();
PeakLoop peak_fma_neon();

}  // namespace detail
}  // namespace hbn

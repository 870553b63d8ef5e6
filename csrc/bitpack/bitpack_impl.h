// Internal: per-ISA entry points of pack_rows (bitpack.cc dispatches on hbn::active_isa()).
// Each has exactly the contract of pack_rows_reference, single-threaded.
#pragma once
#include <cstdint>

#include "hbn/types.h"

namespace hbn {
namespace detail {

using PackRowsFn = void (*)(const float* in, int64_t rows, int channels, int64_t in_stride,
                            word_t* out, const float* thresholds, const uint8_t* flip);

void pack_rows_avx2(const float* in, int64_t rows, int channels, int64_t in_stride, word_t* out,
                    const float* thresholds, const uint8_t* flip);
void pack_rows_avx512(const float* in, int64_t rows, int channels, int64_t in_stride, word_t* out,
                      const float* thresholds, const uint8_t* flip);
void pack_rows_neon(const float* in, int64_t rows, int channels, int64_t in_stride, word_t* out,
                    const float* thresholds, const uint8_t* flip);

// One channel's bit, the definition every path must reproduce (see bitpack.h).
inline bool pack_bit(float x, const float* thresholds, const uint8_t* flip, int c) {
  if (!thresholds) return x < 0.0f;
  const float t = thresholds[c];
  return (flip && flip[c]) ? (x > t) : (x < t);
}

}  // namespace detail
}  // namespace hbn

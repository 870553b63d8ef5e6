// Internal: the per-ISA entry points of pack_rows, one row each of the table in bitpack_table.cc.
// Each has exactly the contract of pack_rows_reference, single-threaded.
#pragma once
#include <cstdint>

#include "hbn/kernel_table.h"
#include "hbn/types.h"

namespace hbn {
namespace detail {

using PackRowsFn = void (*)(const float* in, int64_t rows, int channels, int64_t in_stride,
                            word_t* out, const float* thresholds, const uint8_t* flip);

// The table (bitpack_table.cc): one row per compiled path, best first.
const KernelTable<PackRowsFn>& bitpack_kernels();

// One channel's bit, the definition every path must reproduce (see bitpack.h).
inline bool pack_bit(float x, const float* thresholds, const uint8_t* flip, int c) {
  if (!thresholds) return x < 0.0f;
  const float t = thresholds[c];
  return (flip && flip[c]) ? (x > t) : (x < t);
}

namespace {

// The row loop of the SIMD paths that pack kGroup channels per step: pack_group(x, c) returns
// the kGroup bits of channels c.. c + kGroup - 1; the last channels (fewer than kGroup) go
// through pack_bit so no vector load reads past the row. Internal linkage on purpose: each ISA's
// file instantiates its own copy, compiled with its own flags.
template <int kGroup, typename PackGroup>
inline void pack_rows_grouped(const float* in, int64_t rows, int channels, int64_t in_stride,
                              word_t* out, const float* thr, const uint8_t* flip,
                              const PackGroup& pack_group) {
  static_assert(kWordBits % kGroup == 0, "groups must tile a word");
  constexpr int kPerWord = kWordBits / kGroup;
  const int64_t words = words_for(channels);
  const int full = channels / kGroup;
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in + r * in_stride;
    word_t* o = out + r * words;
    word_t acc = 0;
    int g = 0;
    for (; g < full; ++g) {
      acc |= static_cast<word_t>(pack_group(x, g * kGroup)) << ((g % kPerWord) * kGroup);
      if (g % kPerWord == kPerWord - 1) {
        o[g / kPerWord] = acc;
        acc = 0;
      }
    }
    for (int c = g * kGroup; c < channels; ++c) {
      if (pack_bit(x[c], thr, flip, c)) acc |= word_t{1} << (c % kWordBits);
    }
    if (channels % kWordBits) o[words - 1] = acc;
  }
}

}  // namespace

}  // namespace detail
}  // namespace hbn

#include "bitpack/bitpack.h"

#include <algorithm>

#include "bitpack/bitpack_impl.h"

namespace hbn {

void pack_rows_reference(const float* in, int64_t rows, int channels, int64_t in_stride,
                         word_t* out, const float* thresholds, const uint8_t* flip) {
  const int64_t words = words_for(channels);
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in + r * in_stride;
    word_t* o = out + r * words;
    for (int64_t w = 0; w < words; ++w) o[w] = 0;  // tail bits stay 0
    for (int c = 0; c < channels; ++c) {
      if (detail::pack_bit(x[c], thresholds, flip, c)) o[c / kWordBits] |= word_t{1} << (c % kWordBits);
    }
  }
}

namespace detail {

// The scalar path: the reference rule, but branch-free and building each word in a register
// (the reference sets one bit at a time in memory and is kept for clarity).
void pack_rows_portable(const float* in, int64_t rows, int channels, int64_t in_stride, word_t* out,
                        const float* thr, const uint8_t* flip) {
  const int64_t words = words_for(channels);
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = in + r * in_stride;
    word_t* o = out + r * words;
    for (int64_t w = 0; w < words; ++w) {
      const int c0 = static_cast<int>(w * kWordBits);
      const int n = std::min(kWordBits, channels - c0);
      word_t bits = 0;
      if (!thr) {
        for (int i = 0; i < n; ++i) bits |= static_cast<word_t>(x[c0 + i] < 0.0f) << i;
      } else if (!flip) {
        for (int i = 0; i < n; ++i) bits |= static_cast<word_t>(x[c0 + i] < thr[c0 + i]) << i;
      } else {
        for (int i = 0; i < n; ++i) {
          const float v = x[c0 + i], t = thr[c0 + i];
          const bool b = flip[c0 + i] ? (v > t) : (v < t);
          bits |= static_cast<word_t>(b) << i;
        }
      }
      o[w] = bits;
    }
  }
}

}  // namespace detail

void pack_rows(const float* in, int64_t rows, int channels, int64_t in_stride, word_t* out,
               const float* thresholds, const uint8_t* flip, ThreadPool* pool) {
  if (rows <= 0 || channels <= 0) return;
  const detail::PackRowsFn fn = *detail::bitpack_kernels().select();
  const int64_t words = words_for(channels);
  // Packing streams memory at a few cycles per word; below ~16K floats per thread the
  // wake-up of a worker costs more than it saves.
  const int64_t grain = std::max<int64_t>(1, 16384 / channels);
  if (!pool || pool->num_threads() == 1 || rows < 2 * grain) {
    fn(in, rows, channels, in_stride, out, thresholds, flip);
    return;
  }
  auto body = [&](int64_t b, int64_t e, int) {
    fn(in + b * in_stride, e - b, channels, in_stride, out + b * words, thresholds, flip);
  };
  // One pointer capture fits std::function's inline storage: no allocation per call.
  auto* bp = &body;
  pool->parallel_for(rows, [bp](int64_t b, int64_t e, int t) { (*bp)(b, e, t); }, grain);
}

}  // namespace hbn

#include "qconv/qconv_binw.h"

namespace hbn {

std::vector<int8_t> sign_bits_to_i8(const word_t* bits, const ConvGeometry& g) {
  const int64_t oc = g.out_channels, ic = g.in_channels, kh = g.kernel_h, kw = g.kernel_w;
  const int64_t words = words_for(ic);
  std::vector<int8_t> w(static_cast<size_t>(oc * ic * kh * kw));
  for (int64_t o = 0; o < oc; ++o)
    for (int64_t i = 0; i < kh; ++i)
      for (int64_t j = 0; j < kw; ++j) {
        const word_t* row = bits + ((o * kh + i) * kw + j) * words;
        int8_t* dst = w.data() + o * ic * kh * kw + i * kw + j;  // [o][c][i][j], c varies
        for (int64_t c = 0; c < ic; ++c)
          dst[c * kh * kw] = ((row[c / kWordBits] >> (c % kWordBits)) & 1) ? int8_t(-1) : int8_t(1);
      }
  return w;
}

bool sign_bits_tail_clear(const word_t* bits, const ConvGeometry& g) {
  const int64_t words = words_for(g.in_channels);
  const int tail = static_cast<int>(g.in_channels % kWordBits);
  if (tail == 0) return true;
  const word_t mask = ~((word_t(1) << tail) - 1);
  const int64_t rows = int64_t(g.out_channels) * g.kernel_h * g.kernel_w;
  for (int64_t r = 0; r < rows; ++r)
    if (bits[r * words + words - 1] & mask) return false;
  return true;
}

}  // namespace hbn

#include "bitpack/binarize.h"

#include <algorithm>

namespace hbn {

void binarize_oihw(int64_t oc, int64_t ic, int64_t kh, int64_t kw, const float* weight_oihw, word_t* out) {
  const int64_t words = words_for(ic);
  std::fill_n(out, oc * kh * kw * words, word_t{0});
  for (int64_t o = 0; o < oc; ++o)
    for (int64_t c = 0; c < ic; ++c)
      for (int64_t y = 0; y < kh; ++y)
        for (int64_t x = 0; x < kw; ++x)
          if (weight_oihw[((o * ic + c) * kh + y) * kw + x] < 0.0f)
            out[((o * kh + y) * kw + x) * words + c / kWordBits] |= word_t{1} << (c % kWordBits);
}

std::vector<word_t> binarize_oihw(const ConvGeometry& g, const float* weight_oihw) {
  std::vector<word_t> bits(static_cast<size_t>(g.out_channels) * g.kernel_h * g.kernel_w * words_for(g.in_channels));
  binarize_oihw(g.out_channels, g.in_channels, g.kernel_h, g.kernel_w, weight_oihw, bits.data());
  return bits;
}

}  // namespace hbn

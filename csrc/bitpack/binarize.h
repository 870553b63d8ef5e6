// The one weight binarizer of the C++ core: float OIHW weights to the canonical sign bits
// [OC][KH][KW][words_for(IC)] (the .hbn layout, hbn/types.h): bit = (w < 0), so sign(0) =
// sign(-0) = +1, tail bits past IC are 0. The exporter's Python twin (exporter.pack_sign_bits)
// is checked against it in tests/test_bitpack.py.
#pragma once
#include <cstdint>
#include <vector>

#include "hbn/conv_geometry.h"
#include "hbn/types.h"

namespace hbn {

// out: oc * kh * kw * words_for(ic) words, overwritten.
void binarize_oihw(int64_t oc, int64_t ic, int64_t kh, int64_t kw, const float* weight_oihw, word_t* out);
// The weights of a conv of geometry g (channels and kernel size).
std::vector<word_t> binarize_oihw(const ConvGeometry& g, const float* weight_oihw);

}  // namespace hbn

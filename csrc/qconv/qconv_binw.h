// Binary weights for the 8-bit GEMM (conv_wbin_q8): a WeightBin layer's weights are sign(W) x
// alpha per output channel, i.e. exactly int8 +-1 with scale alpha. The file stores the signs as
// bits (1/8 of int8 weights); at load they are expanded to the int8 [OC][IC][KH][KW] that
// QConv2d packs into its GEMM panels, through QConv2d's ordinary constructor.
#pragma once
#include <cstdint>
#include <vector>

#include "hbn/conv_geometry.h"
#include "hbn/types.h"

namespace hbn {

// Canonical sign bits [OC][KH][KW][words_for(IC)] (bit 1 = -1, channels LSB first) -> int8
// +-1 weights [OC][IC][KH][KW] (PyTorch order, what QConv2d takes). Bits past IC are ignored
// (the caller checks them).
std::vector<int8_t> sign_bits_to_i8(const word_t* bits, const ConvGeometry& g);

// True when every bit past in_channels in each [OC][KH][KW] row of canonical bits is 0.
bool sign_bits_tail_clear(const word_t* bits, const ConvGeometry& g);

}  // namespace hbn

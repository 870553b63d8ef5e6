// Pass 1 of the executor: which values are held as packed sign bits instead of floats, and which
// float values also get packed copies written by their producer. Reads the graph through the
// OpImpl bit-passing interface (bit_input, bits_out, writes_packed_copies) only.
//
// Bit passing: a value whose only path forward is into a binary consumer (an op with a
// bit_input rule: a FullBinConv without the input scale) is held as that consumer's packed sign
// bits, thresholded by its producer. Exact: a FullBinConv producer's transform computes the same
// float y and applies the comparison pack_rows would; a max-pool between them runs on bits (max
// commutes with the comparison, see max_pool_bits); a concat between them joins bit rows, which
// needs every input but the last to end on a word boundary (channel offsets multiple of 64).
//
// Packed copies ("sides"): a float value read by binary consumers (packing it themselves) and by
// a float op, produced by an op whose kernel can compare while it stores (add, max-pool of
// floats), gets one packed copy per distinct consumer rule, written in the producer's pass.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "runtime/graph.h"

namespace hbn {

struct SidePlan {
  int value = 0;               // the float value copied
  std::vector<int> consumers;  // nodes reading the copy instead of packing value themselves
  PackTarget target;           // their (shared) rule
  // Only pixels (y * sub_h, x * sub_w) (OpImpl::packed_in_stride of the consumers): written by
  // the executor after the producer's pass, from its stored floats, not by the producer's kernel.
  int sub_h = 1, sub_w = 1;
};

struct NodeBitPlan {
  // The node's output is bits (BitPlan::value_bits[node + 1]); for BitsOut::kernel these
  // point at the consumer's rule at this value's channel offset.
  const float* out_thr = nullptr;
  const uint8_t* out_flip = nullptr;
  PackTarget out_pack;            // BitsOut::pool from floats
  std::vector<word_t> or_mask;    // BitsOut::pool from bits
  int side_in = -1;               // side this node reads instead of packing its input, or -1
  std::vector<int> sides_out;     // sides this node writes
};

struct BitPlan {
  std::vector<bool> value_bits;  // per value id (0 = input)
  std::vector<NodeBitPlan> nodes;
  std::vector<SidePlan> sides;
  PackTarget input_target;       // the input's pack rule when value_bits[0]
  size_t max_sides_per_node = 0;
};

// enabled = false: every value float, no sides (the reference the fusions are tested against).
BitPlan plan_bits(const Graph& g, bool enabled);

}  // namespace hbn

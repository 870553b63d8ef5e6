// Pass 2 of the executor (after the bit plan, before the memory plan): ops absorbed into the
// output stage of the op before them, so the absorbed op's input is never stored and re-read
// as a separate pass. Reads the graph through the OpImpl fusion interface (takes_residual,
// residual_add, takes_row_pool, row_pool) and the bit plan only.
//
// Residual: an add whose one input is a conv's output (any conv kind) read by nothing else, and
// whose other input (the shortcut) exists before that conv runs, is computed by the conv's
// output stage (OutputTransform::residual: after the conv's own activation, y + shortcut, then
// the add's ReLU - the add's float operations on the same operands). The conv writes the add's
// value and the add's packed copies for binary consumers (a FullBinConv per finished row block,
// the float convs after the conv); the add does not run and the conv's own value is never
// stored.
//
// Row pool: a max-pool whose input is the float output of a conv that reports finished rows
// (takes_row_pool: the fp32 conv and conv_q8) read by nothing else runs per block of conv
// output rows while the block is in cache (pooled rows whose window lies inside the block),
// the rest after the conv; overlapping windows are exact because every pooled row is computed
// once, from final conv rows, by the unfused pool's row kernel (runtime/row_pool_band.h).
//
// Concat into pool: a max-pool of floats (no bits, no packed copies) whose input is a concat
// of floats read by nothing else pools each concat operand into its channel slice of the pool's
// output (max_pool_into); the concat does not run and its value is never stored (SqueezeNet
// Hybrid's fire4 / fire8 outputs: 3 MB of copy saved before pool4).
//
// In place: a residual that no later op reads is overwritten by the sum (the add's value shares
// its buffer, executor.cc), which halves the float traffic of the conv's output stage.
//
// Exact: the fused result is bit-identical to the unfused one (HBN_NO_FUSE=1 at load turns the
// pass off; tests compare whole models both ways).
#pragma once
#include <vector>

#include "runtime/bit_plan.h"
#include "runtime/graph.h"

namespace hbn {

struct NodeFusePlan {
  int residual = -1;    // conv: the value added in its output stage (fused add), or -1
  int add_node = -1;    // conv: the add it computes (writes that node's value and sides)
  // conv: the add's value is stored in the residual's buffer (the conv writes its output over
  // the residual, OpImpl::residual_in_place): every other reader of the residual runs before
  // the conv, so the residual dies in this conv's pass.
  bool in_place = false;
  int pool_node = -1;   // conv with float output: the max-pool run per block of its output rows, or -1
  int concat_node = -1;  // max-pool: the concat whose operands it pools directly, or -1
  int absorbed_by = -1;  // an absorbed node (not run): the node that computes it
};

struct FusePlan {
  std::vector<NodeFusePlan> nodes;
  // Per value id: never stored (a conv output consumed only inside its fused op).
  std::vector<bool> elided;
};

// enabled = false: nothing fused (the reference the fusions are tested against).
FusePlan plan_fusions(const Graph& g, const BitPlan& bp, bool enabled);

// Whether the environment asks for the unfused executor (HBN_NO_FUSE set to anything but ""
// or "0"); read at each load.
bool fusion_disabled_by_env();

}  // namespace hbn

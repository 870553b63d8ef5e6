#include "runtime/fuse_plan.h"

#include <cstdlib>
#include <cstring>

namespace hbn {

bool fusion_disabled_by_env() {
  const char* v = std::getenv("HBN_NO_FUSE");
  return v && *v && std::strcmp(v, "0") != 0;
}

FusePlan plan_fusions(const Graph& g, const BitPlan& bp, bool enabled) {
  const int n_nodes = static_cast<int>(g.nodes.size());
  FusePlan fp;
  fp.nodes.resize(n_nodes);
  fp.elided.assign(n_nodes + 1, false);
  if (!enabled) return fp;
  std::vector<int> consumers(n_nodes + 1, 0);
  for (const Node& nd : g.nodes)
    for (int v : nd.inputs) ++consumers[v];
  // A conv's float output read only by node j (and not the graph's output), the conv not yet
  // fused with anything else.
  auto private_float = [&](int v, int j) {
    if (v == 0 || v == g.output || consumers[v] != 1 || bp.value_bits[v]) return false;
    const NodeFusePlan& c = fp.nodes[v - 1];
    return c.add_node < 0 && c.pool_node < 0 && c.absorbed_by < 0 && bp.nodes[v - 1].sides_out.empty() &&
           g.nodes[j].inputs.size() >= 1;
  };
  // Every reader of value r but the conv c and the add j runs before c (c reads its inputs
  // before its output stage, OpImpl::residual_in_place).
  auto read_before = [&](int r, int c, int j) {
    for (int i = c; i < n_nodes; ++i)
      if (i != c && i != j)
        for (int v : g.nodes[i].inputs)
          if (v == r) return false;
    return true;
  };
  for (int j = 0; j < n_nodes; ++j) {
    const Node& nd = g.nodes[j];
    bool relu = false;
    if (nd.impl->residual_add(&relu) && nd.inputs.size() == 2 && !bp.value_bits[j + 1]) {
      // The later of the two inputs is the conv to fuse into: the other one (the shortcut)
      // must exist when it runs.
      for (int k = 1; k >= 0; --k) {
        const int v = nd.inputs[k], r = nd.inputs[1 - k];
        if (v == r || !private_float(v, j) || !g.nodes[v - 1].impl->takes_residual()) continue;
        if (r > v - 1 || bp.value_bits[r]) continue;  // r is produced by node r - 1 < conv v - 1
        const ValueShape &a = g.shape(v), &b = g.shape(r);
        if (a.c != b.c || a.h != b.h || a.w != b.w) continue;
        fp.nodes[v - 1].residual = r;
        fp.nodes[v - 1].add_node = j;
        fp.nodes[v - 1].in_place =
            r != g.output && g.nodes[v - 1].impl->residual_in_place() && read_before(r, v - 1, j);
        fp.nodes[j].absorbed_by = v - 1;
        fp.elided[v] = true;
        break;
      }
    } else if (nd.impl->row_pool() && nd.inputs.size() == 1) {
      const int v = nd.inputs[0];
      if (private_float(v, j) && g.nodes[v - 1].impl->takes_row_pool()) {
        fp.nodes[v - 1].pool_node = j;
        fp.nodes[j].absorbed_by = v - 1;
      } else if (private_float(v, j) && nd.impl->pools_concat() && g.nodes[v - 1].impl->bits_out() == BitsOut::concat &&
                 !bp.value_bits[j + 1] && bp.nodes[j].sides_out.empty()) {
        bool float_operands = true;
        for (int in : g.nodes[v - 1].inputs) float_operands = float_operands && !bp.value_bits[in];
        if (float_operands) {
          fp.nodes[j].concat_node = v - 1;
          fp.nodes[v - 1].absorbed_by = j;
          fp.elided[v] = true;
        }
      }
    }
  }
  return fp;
}

}  // namespace hbn

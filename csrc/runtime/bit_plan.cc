#include "runtime/bit_plan.h"

#include <algorithm>

namespace hbn {
namespace {

// Whether rules a (from channel a_off) and b (from b_off) threshold n channels alike: equal
// thresholds by float value, equal flips (no flips = all 0).
bool same_slice(const BitRule& a, int64_t a_off, const BitRule& b, int64_t b_off, int64_t n) {
  for (int64_t c = 0; c < n; ++c) {
    if (a.thr[a_off + c] != b.thr[b_off + c]) return false;
    const uint8_t fa = a.flip ? a.flip[a_off + c] : 0, fb = b.flip ? b.flip[b_off + c] : 0;
    if (fa != fb) return false;
  }
  return true;
}

void plan_sides(const Graph& g, BitPlan& bp) {
  const int n_nodes = static_cast<int>(g.nodes.size());
  for (int j = 0; j < n_nodes; ++j) {
    const BitRule* rule = g.nodes[j].impl->bit_input();
    if (!rule) continue;
    const int v = g.nodes[j].inputs[0];
    if (v == 0 || bp.value_bits[v]) continue;
    const int prod = v - 1;
    const Node& pn = g.nodes[prod];
    if (!pn.impl->writes_packed_copies()) continue;
    bool float_inputs = true;
    for (int in : pn.inputs) float_inputs = float_inputs && !bp.value_bits[in];
    if (!float_inputs) continue;
    const auto [sub_h, sub_w] = g.nodes[j].impl->packed_in_stride();
    int found = -1;
    for (int k : bp.nodes[prod].sides_out) {
      const BitRule* other = g.nodes[bp.sides[k].consumers[0]].impl->bit_input();
      if (other->same(*rule) && bp.sides[k].sub_h == sub_h &&
          bp.sides[k].sub_w == sub_w)
        found = k;
    }
    if (found < 0) {
      found = static_cast<int>(bp.sides.size());
      bp.sides.push_back({v, {}, make_pack_target(rule->thr, rule->flip_at(0), g.shape(v).c), sub_h, sub_w});
      bp.nodes[prod].sides_out.push_back(found);
      bp.max_sides_per_node = std::max(bp.max_sides_per_node, bp.nodes[prod].sides_out.size());
    }
    bp.sides[found].consumers.push_back(j);
    bp.nodes[j].side_in = found;
  }
}

}  // namespace

BitPlan plan_bits(const Graph& g, bool enabled) {
  const int n_nodes = static_cast<int>(g.nodes.size());
  BitPlan bp;
  bp.value_bits.assign(n_nodes + 1, false);
  bp.nodes.resize(n_nodes);
  if (!enabled) return bp;
  // readers[v]: (node, input index) of every read of value v.
  std::vector<std::vector<std::pair<int, int>>> readers(n_nodes + 1);
  for (int i = 0; i < n_nodes; ++i)
    for (size_t q = 0; q < g.nodes[i].inputs.size(); ++q)
      readers[g.nodes[i].inputs[q]].push_back({i, static_cast<int>(q)});
  // sink[v]: a binary consumer whose rule value v would carry, at channel sink_off[v]. Every
  // read of v must lead to a binary consumer (directly, or through max-pools and word-aligned
  // concats, whose outputs have sinks themselves), and all those rules must agree on v's
  // channels: then one set of bits serves every reader (several binary convs with one BN, or
  // a max-pool feeding them).
  std::vector<int> sink(n_nodes + 1, -1);
  std::vector<int64_t> sink_off(n_nodes + 1, 0);
  for (int v = n_nodes; v >= 0; --v) {
    if (v == g.output || readers[v].empty()) continue;
    int s = -1;
    int64_t s_off = 0;
    bool ok = true;
    for (const auto& [j, q] : readers[v]) {
      const Node& c = g.nodes[j];
      const BitsOut through = c.impl->bits_out();
      int cand = -1;
      int64_t cand_off = 0;
      if (c.impl->bit_input() && q == 0) {
        cand = j;
      } else if (through == BitsOut::pool && sink[j + 1] >= 0) {
        cand = sink[j + 1];
        cand_off = sink_off[j + 1];
      } else if (through == BitsOut::concat && sink[j + 1] >= 0) {
        int64_t off = 0;
        bool aligned = true;
        for (int k = 0; k < q; ++k) off += g.shape(c.inputs[static_cast<size_t>(k)]).c;
        for (size_t k = 0; k + 1 < c.inputs.size(); ++k)
          aligned = aligned && g.shape(c.inputs[k]).c % kWordBits == 0;
        if (aligned) {
          cand = sink[j + 1];
          cand_off = sink_off[j + 1] + off;
        }
      }
      if (cand < 0) {
        ok = false;
        break;
      }
      if (s < 0) {
        s = cand;
        s_off = cand_off;
      } else if (!same_slice(*g.nodes[s].impl->bit_input(), s_off, *g.nodes[cand].impl->bit_input(), cand_off,
                             g.shape(v).c)) {
        ok = false;
        break;
      }
    }
    if (ok) {
      sink[v] = s;
      sink_off[v] = s_off;
    }
  }
  // A value is bits when it has a sink and its producer can write bits (the input always can:
  // nchw_pack); then drop values whose neighbours on the path stayed float, until consistent.
  bp.value_bits[0] = sink[0] >= 0;
  for (int i = 0; i < n_nodes; ++i) {
    const Node& nd = g.nodes[i];
    const int v = i + 1;
    if (sink[v] < 0) continue;
    const BitsOut bo = nd.impl->bits_out();
    if (bo == BitsOut::kernel || bo == BitsOut::pool) bp.value_bits[v] = true;
    else if (bo == BitsOut::concat)
      bp.value_bits[v] = std::all_of(nd.inputs.begin(), nd.inputs.end(), [&](int in) { return bp.value_bits[in] == true; });
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (int v = 0; v <= n_nodes; ++v) {
      if (!bp.value_bits[v]) continue;
      bool ok = true;
      for (const auto& [c, q] : readers[v])
        ok = ok && ((g.nodes[c].impl->bit_input() != nullptr && q == 0) || bp.value_bits[c + 1]);
      if (v > 0 && g.nodes[v - 1].impl->bits_out() == BitsOut::concat)
        for (int in : g.nodes[v - 1].inputs) ok = ok && bp.value_bits[in];
      if (!ok) {
        bp.value_bits[v] = false;
        changed = true;
      }
    }
  }
  if (bp.value_bits[0]) {
    const BitRule& r = *g.nodes[sink[0]].impl->bit_input();
    bp.input_target = make_pack_target(r.thr + sink_off[0], r.flip_at(sink_off[0]), g.input.c);
  }
  for (int i = 0; i < n_nodes; ++i) {
    const int v = i + 1;
    if (!bp.value_bits[v]) continue;
    const BitRule& r = *g.nodes[sink[v]].impl->bit_input();
    NodeBitPlan& nb = bp.nodes[i];
    nb.out_thr = r.thr + sink_off[v];
    nb.out_flip = r.flip_at(sink_off[v]);
    if (g.nodes[i].impl->bits_out() != BitsOut::pool) continue;
    const int64_t ch_n = g.nodes[i].out.c;
    if (!bp.value_bits[g.nodes[i].inputs[0]]) nb.out_pack = make_pack_target(nb.out_thr, nb.out_flip, ch_n);
    nb.or_mask.assign(static_cast<size_t>(words_for(ch_n)), 0);
    for (int64_t ch = 0; ch < ch_n && r.flip; ++ch)
      if (r.flip[sink_off[v] + ch]) nb.or_mask[ch / kWordBits] |= word_t{1} << (ch % kWordBits);
  }
  plan_sides(g, bp);
  return bp;
}

}  // namespace hbn

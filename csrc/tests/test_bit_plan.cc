// The bit plan on its own (no kernels prepared, nothing run): which values travel as packed
// bits, where a pool or concat carries them through, when a concat cannot, and which producers
// write packed copies for binary consumers.
#include "runtime/bit_plan.h"
#include "tests/check.h"
#include "tests/model_writer.h"

namespace {

using hbn_test::Writer;
constexpr uint32_t A = hbn::kAbsent;

struct Built {
  std::vector<uint8_t> bytes;
  hbn::ModelFile file;
  hbn::Graph graph;
};

// `bytes` must outlive the graph's tensor pointers: keep all three together.
std::unique_ptr<Built> build(std::vector<uint8_t> bytes) {
  auto b = std::make_unique<Built>();
  b->bytes = std::move(bytes);
  b->file = hbn::parse_model(b->bytes.data(), b->bytes.size());
  b->graph = hbn::build_graph(b->file);
  return b;
}

std::vector<std::pair<uint32_t, int64_t>> conv_attrs(int64_t ic, int pad) {
  return {{hbn::kStrideH, 1}, {hbn::kStrideW, 1}, {hbn::kPadH, pad}, {hbn::kPadW, pad}, {hbn::kInChannels, ic}};
}

uint32_t weights(Writer& w, int64_t oc, int64_t k, int64_t ic) {
  const int64_t words = hbn::words_for(ic);
  return w.bits_tensor(std::vector<uint64_t>(static_cast<size_t>(oc * k * k * words), 0x5), {oc, k, k, words});
}

void test_chain_and_pool() {
  Writer w;
  const uint32_t w1 = weights(w, 8, 3, 3), w2 = weights(w, 8, 1, 8), w3 = weights(w, 4, 1, 8);
  std::vector<uint8_t> flip(8, 0);
  flip[2] = 1;
  const uint32_t thr = w.tensor(std::vector<float>(8, 0.5f), {8});
  const uint32_t fl = w.raw_tensor(3, flip.data(), flip.size(), {8});
  w.op(3, "b1", {0}, {w1, A, A, A, A, A, A}, conv_attrs(3, 1));    // v1
  w.op(5, "pool", {1}, {}, {{hbn::kKernelH, 2}, {hbn::kKernelW, 2}, {hbn::kStrideH, 2}, {hbn::kStrideW, 2},
                            {hbn::kPadH, 0}, {hbn::kPadW, 0}});     // v2
  w.op(3, "b2", {2}, {w2, A, A, thr, fl, A, A}, conv_attrs(8, 0));  // v3
  w.op(3, "b3", {3}, {w3, A, A, A, A, A, A}, conv_attrs(8, 0));     // v4 (output)
  auto b = build(w.finish(3, 8, 8));
  const hbn::BitPlan p = hbn::plan_bits(b->graph, true);
  CHECK(p.value_bits == (std::vector<bool>{true, true, true, true, false}), "value_bits of a binary chain");
  CHECK(p.nodes[1].or_mask.size() == 1 && p.nodes[1].or_mask[0] == (1u << 2), "pool OR mask from b2's flips");
  CHECK(p.nodes[0].out_thr != nullptr && p.nodes[0].out_thr[0] == 0.5f, "b1 thresholds for b2 through the pool");
  CHECK(p.sides.empty(), "no packed copies in a pure chain");
  const hbn::BitPlan off = hbn::plan_bits(b->graph, false);
  CHECK(off.value_bits == std::vector<bool>(5, false), "disabled: every value float");
}

void test_concat_alignment() {
  // concat of 70 + 8 channels: the first operand does not end on a word boundary -> floats;
  // 64 + 8 -> bits straight through the concat.
  for (int64_t c1 : {70, 64}) {
    Writer w;
    const uint32_t wa = weights(w, c1, 1, 4), wb = weights(w, 8, 1, 4), wc = weights(w, 2, 1, c1 + 8);
    w.op(3, "a", {0}, {wa, A, A, A, A, A, A}, conv_attrs(4, 0));
    w.op(3, "b", {0}, {wb, A, A, A, A, A, A}, conv_attrs(4, 0));
    w.op(9, "cat", {1, 2}, {}, {});
    w.op(3, "c", {3}, {wc, A, A, A, A, A, A}, conv_attrs(c1 + 8, 0));
    auto b = build(w.finish(4, 5, 5));
    const hbn::BitPlan p = hbn::plan_bits(b->graph, true);
    const bool aligned = c1 % 64 == 0;
    CHECK(p.value_bits[3] == aligned && p.value_bits[1] == aligned && p.value_bits[2] == aligned,
          "concat of %lld + 8 channels: bits %d", static_cast<long long>(c1), int(aligned));
    CHECK(p.value_bits[0], "the input feeds two convs with one rule (plain sign): packed once");
  }
}

// A max-pool read by two binary convs: bits when their rules agree (one BN), else the pool
// keeps floats and writes packed copies; a third reader that is not binary keeps it float.
void test_pool_with_several_consumers() {
  for (int variant = 0; variant < 3; ++variant) {
    Writer w;
    const uint32_t w1 = weights(w, 70, 3, 3), w2 = weights(w, 8, 1, 70), w3 = weights(w, 8, 1, 70);
    std::vector<float> t(70);
    std::vector<uint8_t> flip(70, 0);
    for (int c = 0; c < 70; ++c) t[c] = 0.01f * static_cast<float>(c);
    flip[66] = 1;
    const uint32_t thr = w.tensor(t, {70}), fl = w.raw_tensor(3, flip.data(), flip.size(), {70});
    t[69] += 1.0f;  // differs in the last channel only
    const uint32_t thr_b = w.tensor(t, {70});
    w.op(3, "b1", {0}, {w1, A, A, A, A, A, A}, conv_attrs(3, 1));    // v1
    w.op(5, "pool", {1}, {}, {{hbn::kKernelH, 3}, {hbn::kKernelW, 3}, {hbn::kStrideH, 2}, {hbn::kStrideW, 2},
                              {hbn::kPadH, 1}, {hbn::kPadW, 1}, {hbn::kCeilMode, 1}});  // v2
    w.op(3, "b2", {2}, {w2, A, A, thr, fl, A, A}, conv_attrs(70, 0));                        // v3
    w.op(3, "b3", {2}, {w3, A, A, variant == 1 ? thr_b : thr, fl, A, A}, conv_attrs(70, 0));  // v4
    if (variant == 2) {
      w.op(4, "relu", {2}, {}, {});      // v5: a float reader of the pool
      w.op(9, "cat", {3, 4, 5}, {}, {});  // v6
    } else {
      w.op(8, "add", {3, 4}, {}, {});  // v5
    }
    auto b = build(w.finish(3, 9, 9));
    const hbn::BitPlan p = hbn::plan_bits(b->graph, true);
    if (variant == 0) {
      CHECK(p.value_bits[1] && p.value_bits[2], "pool read by two convs with one rule: bits");
      CHECK(p.nodes[1].or_mask.size() == 2 && p.nodes[1].or_mask[1] == (hbn::word_t{1} << 2), "OR mask");
      CHECK(p.sides.empty(), "no packed copies");
    } else if (variant == 1) {
      CHECK(!p.value_bits[1] && !p.value_bits[2], "two rules: the pool stays float");
      CHECK(p.sides.size() == 2 && p.nodes[1].sides_out.size() == 2, "the pool packs a copy per rule");
    } else {
      CHECK(!p.value_bits[1] && !p.value_bits[2], "a float reader: the pool stays float");
      CHECK(p.sides.size() == 1 && p.sides[0].consumers.size() == 2, "one packed copy for both convs");
    }
  }
}

void test_packed_copies() {
  // an add read by a binary conv and by another add: the add writes one packed copy
  Writer w;
  const uint32_t wa = weights(w, 8, 1, 8);
  w.op(4, "relu", {0}, {}, {});                                  // v1
  w.op(8, "add", {1, 1}, {}, {});                                // v2
  w.op(3, "b", {2}, {wa, A, A, A, A, A, A}, conv_attrs(8, 0));   // v3
  w.op(8, "add2", {3, 2}, {}, {});                               // v4
  auto b = build(w.finish(8, 3, 3));
  const hbn::BitPlan p = hbn::plan_bits(b->graph, true);
  CHECK(p.sides.size() == 1 && p.sides[0].value == 2, "one packed copy of the add's output");
  CHECK(p.nodes[1].sides_out == std::vector<int>{0} && p.nodes[2].side_in == 0, "add writes it, b reads it");
  CHECK(!p.value_bits[2], "the add's output itself stays float");
  CHECK(p.max_sides_per_node == 1, "max sides");
}

}  // namespace

int main() {
  test_chain_and_pool();
  test_concat_alignment();
  test_pool_with_several_consumers();
  test_packed_copies();
  return hbn_test::finish("test_bit_plan");
}

#include "runtime/graph.h"

namespace hbn {
namespace {

bool shape_ok(const ValueShape& s) {
  return s.c >= 1 && s.h >= 1 && s.w >= 1 && s.c <= kMaxChannels && s.h <= kMaxSpatial &&
         s.w <= kMaxSpatial && s.per_image() <= kMaxPerImage;
}

std::string shape_text(int64_t c, int64_t h, int64_t w) {
  return "(" + std::to_string(c) + ", " + std::to_string(h) + ", " + std::to_string(w) + ")";
}

}  // namespace

int64_t pool_out_size(int64_t in, int k, int s, int p, bool ceil_mode) {
  int64_t num = in + 2 * p - k + (ceil_mode ? s - 1 : 0);
  int64_t out = num / s + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

Graph build_graph(const ModelFile& mf) {
  Graph gr;
  gr.input = {mf.in_c, mf.in_h, mf.in_w, false};
  if (mf.in_c > kMaxChannels || mf.in_h > kMaxSpatial || mf.in_w > kMaxSpatial || !shape_ok(gr.input))
    throw FormatError("input shape " + shape_text(mf.in_c, mf.in_h, mf.in_w) + " is empty or too large");
  gr.nodes.reserve(mf.ops.size());
  for (const OpDesc& op : mf.ops) {
    const OpSchema& s = *op.schema;
    const int n_in = static_cast<int>(op.inputs.size());
    std::vector<const ValueShape*> ins;
    for (uint32_t v : op.inputs) ins.push_back(&gr.shape(static_cast<int>(v)));
    BuildCtx ctx(mf, op, s, std::move(ins));
    if (n_in < s.min_inputs || (s.max_inputs >= 0 && n_in > s.max_inputs))
      ctx.fail(std::to_string(n_in) + " inputs, expected " +
               (s.max_inputs < 0 ? "at least " + std::to_string(s.min_inputs)
                                 : std::to_string(s.min_inputs)));
    Node n;
    n.type = op.type;
    n.schema = &s;
    n.name = op.name;
    for (uint32_t v : op.inputs) n.inputs.push_back(static_cast<int>(v));
    n.impl = op_def(static_cast<uint32_t>(op.type))->build(ctx);
    n.out = ctx.out;
    if (!shape_ok(n.out))
      ctx.fail("output shape " + shape_text(n.out.c, n.out.h, n.out.w) + " is empty or too large");
    for (int v : n.inputs) n.impl->in.push_back(gr.shape(v));
    n.impl->out = n.out;
    gr.nodes.push_back(std::move(n));
  }
  gr.output = static_cast<int>(mf.output_value);
  return gr;
}

}  // namespace hbn

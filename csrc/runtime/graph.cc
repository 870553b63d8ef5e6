#include "runtime/graph.h"

#include <cmath>
#include <cstring>

namespace hbn {
namespace {

constexpr int64_t kMaxChannels = int64_t(1) << 20;
constexpr int64_t kMaxSpatial = int64_t(1) << 15;
constexpr int64_t kMaxPerImage = int64_t(1) << 28;  // elements of one image's activation
constexpr int kMaxKernel = 64;
constexpr int kMaxPoolKernel = 1024;

[[noreturn]] void fail(const Node& n, const std::string& msg) {
  throw FormatError("op '" + n.name + "' (" + op_type_name(n.type) + "): " + msg);
}

int64_t attr_int(const Node& n, const OpDesc& op, AttrKey key, const char* name, int64_t lo,
                 int64_t hi, bool required = true, int64_t dflt = 0) {
  const Attr& a = op.attrs[key];
  if (!a.present) {
    if (required) fail(n, std::string("missing attribute ") + name);
    return dflt;
  }
  if (a.i < lo || a.i > hi)
    fail(n, std::string("attribute ") + name + " = " + std::to_string(a.i) + " not in [" +
             std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return a.i;
}

double attr_float(const Node& n, const OpDesc& op, AttrKey key, const char* name) {
  const Attr& a = op.attrs[key];
  if (!a.present) fail(n, std::string("missing attribute ") + name);
  if (!std::isfinite(a.f)) fail(n, std::string("attribute ") + name + " is not finite");
  return a.f;
}

const TensorDesc* tensor(const Node& n, const ModelFile& mf, const OpDesc& op, int slot,
                         const char* name, DType dtype, std::vector<int64_t> dims, bool required) {
  const uint32_t id = op.tensors[slot];
  if (id == kAbsent) {
    if (required) fail(n, std::string("missing tensor ") + name);
    return nullptr;
  }
  const TensorDesc& t = mf.tensors[id];
  if (t.dtype != dtype) fail(n, std::string("tensor ") + name + " has the wrong dtype");
  if (t.dims != dims) {
    std::string want, got;
    for (auto d : dims) want += std::to_string(d) + ",";
    for (auto d : t.dims) got += std::to_string(d) + ",";
    fail(n, std::string("tensor ") + name + " has shape (" + got + ") expected (" + want + ")");
  }
  return &t;
}

void check_finite(const Node& n, const TensorDesc* t, const char* name, bool allow_inf) {
  if (!t) return;
  for (int64_t i = 0; i < t->numel(); ++i) {
    float v;
    std::memcpy(&v, t->data + 4 * i, 4);
    if (std::isnan(v) || (!allow_inf && std::isinf(v)))
      fail(n, std::string("tensor ") + name + " holds a non-finite value");
  }
}

void check_shape(const Node& n, const ValueShape& s) {
  if (s.c < 1 || s.h < 1 || s.w < 1 || s.c > kMaxChannels || s.h > kMaxSpatial ||
      s.w > kMaxSpatial || s.per_image() > kMaxPerImage)
    fail(n, "output shape (" + std::to_string(s.c) + ", " + std::to_string(s.h) + ", " +
                std::to_string(s.w) + ") is empty or too large");
}

void read_conv(Node& n, const ModelFile& mf, const OpDesc& op, const ValueShape& in) {
  ConvGeometry& g = n.geom;
  g.stride_h = attr_int(n, op, kStrideH, "stride_h", 1, kMaxKernel);
  g.stride_w = attr_int(n, op, kStrideW, "stride_w", 1, kMaxKernel);
  g.pad_h = attr_int(n, op, kPadH, "pad_h", 0, kMaxKernel);
  g.pad_w = attr_int(n, op, kPadW, "pad_w", 0, kMaxKernel);
  n.act = static_cast<Activation>(attr_int(n, op, kAct, "act", 0, 1, false, 0));
  n.linear = attr_int(n, op, kLinear, "linear", 0, 1, false, 0) != 0;
  const uint32_t wid = op.tensors[0];
  if (wid == kAbsent) fail(n, "missing tensor weight");
  const TensorDesc& w = mf.tensors[wid];
  if (w.dims.size() != 4) fail(n, "weight must be 4-D");
  if (w.dims[0] > kMaxChannels || w.dims[1] > kMaxChannels || w.dims[2] > kMaxKernel ||
      w.dims[3] > kMaxKernel * 64)
    fail(n, "weight dimensions out of range");
  g.out_channels = static_cast<int>(w.dims[0]);
  if (n.type == OpType::conv_f32) {
    g.in_channels = static_cast<int>(w.dims[1]);
    g.kernel_h = static_cast<int>(w.dims[2]);
    g.kernel_w = static_cast<int>(w.dims[3]);
    n.weight = tensor(n, mf, op, 0, "weight", DType::f32, w.dims, true);
    check_finite(n, n.weight, "weight", false);
  } else {
    g.in_channels = static_cast<int>(attr_int(n, op, kInChannels, "in_channels", 1, kMaxChannels));
    g.kernel_h = static_cast<int>(w.dims[1]);
    g.kernel_w = static_cast<int>(w.dims[2]);
    if (g.kernel_w > kMaxKernel) fail(n, "kernel too large");
    n.weight = tensor(n, mf, op, 0, "weight", DType::bits,
                      {g.out_channels, g.kernel_h, g.kernel_w, words_for(g.in_channels)}, true);
  }
  if (g.in_channels != in.c)
    fail(n, "expects " + std::to_string(g.in_channels) + " input channels, input has " +
                std::to_string(in.c));
  if (in.h + 2 * g.pad_h < g.kernel_h ||
      in.w + 2 * g.pad_w < g.kernel_w)
    fail(n, "kernel larger than the padded input");
  const int64_t oc = g.out_channels;
  n.scale = tensor(n, mf, op, 1, "scale", DType::f32, {oc}, false);
  n.bias = tensor(n, mf, op, 2, "bias", DType::f32, {oc}, false);
  check_finite(n, n.scale, "scale", false);
  check_finite(n, n.bias, "bias", false);
  if (n.type == OpType::conv_fbin) {
    const int64_t ic = g.in_channels;
    n.in_threshold = tensor(n, mf, op, 3, "in_threshold", DType::f32, {ic}, false);
    n.in_flip = tensor(n, mf, op, 4, "in_flip", DType::u8, {ic}, false);
    if (n.in_flip && !n.in_threshold) fail(n, "in_flip given without in_threshold");
    check_finite(n, n.in_threshold, "in_threshold", true);  // +-inf encode constant channels
    if (n.in_flip)
      for (int64_t i = 0; i < ic; ++i)
        if (n.in_flip->data[i] > 1) fail(n, "in_flip values must be 0 or 1");
    n.input_scale = attr_int(n, op, kInputScale, "input_scale", 0, 1, false, 0) != 0;
    n.bn_scale = tensor(n, mf, op, 5, "bn_scale", DType::f32, {ic}, n.input_scale);
    n.bn_shift = tensor(n, mf, op, 6, "bn_shift", DType::f32, {ic}, n.input_scale);
    check_finite(n, n.bn_scale, "bn_scale", false);
    check_finite(n, n.bn_shift, "bn_shift", false);
  }
  n.out.c = oc;
  n.out.h = g.out_h(static_cast<int>(in.h));
  n.out.w = g.out_w(static_cast<int>(in.w));
  n.out.flat = in.flat;
  if (in.flat && (g.kernel_h != 1 || g.kernel_w != 1 || g.pad_h || g.pad_w))
    fail(n, "a flat (flattened) input only takes a 1x1 unpadded kernel");
}

void read_pool(Node& n, const OpDesc& op, const ValueShape& in, bool avg) {
  n.kh = attr_int(n, op, kKernelH, "kernel_h", 1, kMaxPoolKernel);
  n.kw = attr_int(n, op, kKernelW, "kernel_w", 1, kMaxPoolKernel);
  n.sh = attr_int(n, op, kStrideH, "stride_h", 1, kMaxPoolKernel);
  n.sw = attr_int(n, op, kStrideW, "stride_w", 1, kMaxPoolKernel);
  n.ph = attr_int(n, op, kPadH, "pad_h", 0, n.kh / 2);
  n.pw = attr_int(n, op, kPadW, "pad_w", 0, n.kw / 2);
  n.ceil_mode = attr_int(n, op, kCeilMode, "ceil_mode", 0, 1, false, 0) != 0;
  if (avg) n.count_include_pad = attr_int(n, op, kCountIncludePad, "count_include_pad", 0, 1, false, 1) != 0;
  if (in.h + 2 * n.ph < n.kh || in.w + 2 * n.pw < n.kw) fail(n, "pooling window larger than the padded input");
  n.out = in;
  n.out.h = pool_out_size(in.h, n.kh, n.sh, n.ph, n.ceil_mode);
  n.out.w = pool_out_size(in.w, n.kw, n.sw, n.pw, n.ceil_mode);
}

}  // namespace

int64_t pool_out_size(int64_t in, int k, int s, int p, bool ceil_mode) {
  int64_t num = in + 2 * p - k + (ceil_mode ? s - 1 : 0);
  int64_t out = num / s + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

std::string Node::kind() const {
  switch (type) {
    case OpType::conv_f32: return "fprec";
    case OpType::conv_wbin: return "wbin";
    case OpType::conv_fbin: return "fbin";
    default: return op_type_name(type);
  }
}

Graph build_graph(const ModelFile& mf) {
  Graph gr;
  {
    Node in;
    in.name = "<input>";
    if (mf.in_c < 1 || mf.in_h < 1 || mf.in_w < 1 || mf.in_c > kMaxChannels ||
        mf.in_h > kMaxSpatial || mf.in_w > kMaxSpatial || mf.in_c * mf.in_h * mf.in_w > kMaxPerImage)
      throw FormatError("input shape (" + std::to_string(mf.in_c) + ", " + std::to_string(mf.in_h) +
                        ", " + std::to_string(mf.in_w) + ") is empty or too large");
    gr.input = {mf.in_c, mf.in_h, mf.in_w, false};
  }
  gr.nodes.reserve(mf.ops.size());
  for (size_t i = 0; i < mf.ops.size(); ++i) {
    const OpDesc& op = mf.ops[i];
    gr.nodes.emplace_back();
    Node& n = gr.nodes.back();
    n.type = op.type;
    n.name = op.name;
    for (uint32_t v : op.inputs) n.inputs.push_back(static_cast<int>(v));
    const size_t want_inputs = (op.type == OpType::add) ? 2 : (op.type == OpType::concat ? 0 : 1);
    if (op.type == OpType::concat ? op.inputs.empty() : op.inputs.size() != want_inputs)
      fail(n, std::to_string(op.inputs.size()) + " inputs, expected " +
                  (op.type == OpType::concat ? std::string("at least 1") : std::to_string(want_inputs)));
    const ValueShape& in = gr.shape(n.inputs[0]);
    switch (op.type) {
      case OpType::conv_f32:
      case OpType::conv_wbin:
      case OpType::conv_fbin:
        read_conv(n, mf, op, in);
        break;
      case OpType::relu:
      case OpType::softmax:
        n.out = in;
        break;
      case OpType::max_pool:
        read_pool(n, op, in, false);
        break;
      case OpType::avg_pool:
        read_pool(n, op, in, true);
        break;
      case OpType::adaptive_avg_pool:
        n.out_h = attr_int(n, op, kOutH, "out_h", 1, kMaxSpatial);
        n.out_w = attr_int(n, op, kOutW, "out_w", 1, kMaxSpatial);
        n.out = {in.c, n.out_h, n.out_w, in.flat};
        break;
      case OpType::add: {
        const ValueShape& b = gr.shape(n.inputs[1]);
        if (b.c != in.c || b.h != in.h || b.w != in.w) fail(n, "input shapes differ");
        n.act = static_cast<Activation>(attr_int(n, op, kAct, "act", 0, 1, false, 0));
        n.out = in;
        break;
      }
      case OpType::concat: {
        n.out = in;
        n.out.c = 0;
        for (int v : n.inputs) {
          const ValueShape& s = gr.shape(v);
          if (s.h != in.h || s.w != in.w) fail(n, "inputs differ in height/width");
          n.out.c += s.c;
          if (n.out.c > kMaxChannels) fail(n, "too many channels");
        }
        break;
      }
      case OpType::flatten:
        n.out = {in.per_image(), 1, 1, true};
        break;
      case OpType::lrn:
        n.size = attr_int(n, op, kSize, "size", 1, 1 << 16);
        n.alpha = attr_float(n, op, kAlpha, "alpha");
        n.beta = attr_float(n, op, kBeta, "beta");
        n.k = attr_float(n, op, kK, "k");
        n.out = in;
        break;
      case OpType::batchnorm:
        n.bn_scale = tensor(n, mf, op, 0, "scale", DType::f32, {in.c}, true);
        n.bn_shift = tensor(n, mf, op, 1, "shift", DType::f32, {in.c}, true);
        check_finite(n, n.bn_scale, "scale", false);
        check_finite(n, n.bn_shift, "shift", false);
        n.act = static_cast<Activation>(attr_int(n, op, kAct, "act", 0, 1, false, 0));
        n.out = in;
        break;
    }
    check_shape(n, n.out);
  }
  gr.output = static_cast<int>(mf.output_value);
  return gr;
}

}  // namespace hbn

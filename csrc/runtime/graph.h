// Semantic validation of a parsed .hbn file and shape inference: turns the file's ops into typed
// nodes whose attributes, tensor dtypes/shapes and value shapes are all checked, so the executor
// can trust every index and size it is given.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "bconv/bconv.h"
#include "runtime/format.h"
#include "transform/output_transform.h"

namespace hbn {

// Per-image shape of a value (the batch dimension is chosen at run time). Activations are NHWC.
// `flat` marks values produced by flatten (or computed from a flat value): shown as [N, C].
struct ValueShape {
  int64_t c = 0, h = 0, w = 0;
  bool flat = false;
  int64_t per_image() const { return c * h * w; }
};

struct Node {
  OpType type = OpType::relu;
  std::string name;
  std::vector<int> inputs;  // value ids
  ValueShape out;

  // conv_*: geometry, fused activation, XNOR-Net input scale, tensors (null when absent).
  ConvGeometry geom;
  Activation act = Activation::none;
  bool input_scale = false;
  bool linear = false;
  const TensorDesc* weight = nullptr;
  const TensorDesc* scale = nullptr;
  const TensorDesc* bias = nullptr;
  const TensorDesc* in_threshold = nullptr;  // conv_fbin: folded BN before sign
  const TensorDesc* in_flip = nullptr;
  const TensorDesc* bn_scale = nullptr;  // conv_fbin with input_scale / batchnorm op: scale
  const TensorDesc* bn_shift = nullptr;

  // pooling
  int kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  bool ceil_mode = false, count_include_pad = true;
  int out_h = 1, out_w = 1;
  // lrn
  int size = 1;
  double alpha = 0, beta = 0, k = 0;

  // "fprec", "wbin", "fbin" for convolutions, else the op type name.
  std::string kind() const;
};

struct Graph {
  ValueShape input;
  std::vector<Node> nodes;
  int output = 0;  // value id
  const ValueShape& shape(int value) const { return value == 0 ? input : nodes[value - 1].out; }
};

// Throws FormatError naming the op and what is wrong.
Graph build_graph(const ModelFile& mf);

// PyTorch's pooling output size (floor or ceil mode; a ceil window must start inside the input
// or its left padding).
int64_t pool_out_size(int64_t in, int k, int s, int p, bool ceil_mode);

}  // namespace hbn

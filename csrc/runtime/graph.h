// Semantic validation of a parsed .hbn file and shape inference: each op's unit (OpDef::build,
// runtime/ops/) checks its attributes, tensors and input shapes and returns the node's OpImpl,
// so the executor can trust every index and size it is given.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/format.h"
#include "runtime/op.h"

namespace hbn {

struct Node {
  OpType type = OpType::relu;
  const OpSchema* schema = nullptr;
  std::string name;
  std::vector<int> inputs;  // value ids
  ValueShape out;
  std::unique_ptr<OpImpl> impl;  // the op's own parameters and kernels

  // "fprec", "wbin", "fbin" for convolutions, else the op type name.
  std::string kind() const { return schema->kind; }
};

struct Graph {
  ValueShape input;
  std::vector<Node> nodes;
  int output = 0;  // value id
  const ValueShape& shape(int value) const { return value == 0 ? input : nodes[value - 1].out; }
};

// Throws FormatError naming the op and what is wrong. The returned nodes are validated but not
// prepared (OpImpl::prepare repacks weights; the executor calls it).
Graph build_graph(const ModelFile& mf);

// PyTorch's pooling output size (floor or ceil mode; a ceil window must start inside the input
// or its left padding).
int64_t pool_out_size(int64_t in, int k, int s, int p, bool ceil_mode);

}  // namespace hbn

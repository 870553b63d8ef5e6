// Reader of the .hbn model format (docs/format.md). parse_model() validates every size, offset,
// count, dtype and reference before use; anything wrong throws FormatError naming the problem.
// Op-level semantics (attribute ranges, tensor shapes, value shapes) are checked by graph.cc.
// Op codes, slot counts and attribute types come from the op registry (op_schema.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/op_schema.h"

namespace hbn {

class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// 2: a tensor record may name a kernel layout (hbn/weight_layout.h); version 1 files still load.
constexpr uint32_t kFormatVersion = 2;
constexpr size_t kHeaderSize = 128;
constexpr size_t kSectionAlign = 64;
constexpr uint32_t kAbsent = 0xFFFFFFFFu;

struct TensorDesc {
  DType dtype = DType::f32;
  std::vector<int64_t> dims;
  const uint8_t* data = nullptr;  // points into the file buffer (64-byte aligned offset)
  uint64_t nbytes = 0;
  // Version 2: the kernel layout the bytes are in (WeightLayout); 0 = dims and dtype describe
  // them. A laid-out tensor keeps its logical dims (those of the canonical form) and its nbytes
  // is the layout's size, which the op that reads it checks (it knows the geometry).
  uint32_t layout = 0;
  int64_t numel() const;
};

struct Attr {
  uint32_t key = 0;
  bool present = false;
  bool is_float = false;
  int64_t i = 0;
  double f = 0.0;
};

struct OpDesc {
  const OpSchema* schema = nullptr;  // from the registry: the type code is known
  OpType type = OpType::relu;
  std::string name;
  std::vector<uint32_t> inputs;   // value ids: 0 = graph input, op k produces value k + 1
  std::vector<uint32_t> tensors;  // slot -> tensor index or kAbsent
  // The attributes the record gives, in file order. Sparse: an array over every key was 3/4 of
  // a parsed record's size, the largest part of a small model's peak heap during load.
  std::vector<Attr> attrs;
  // The attribute with this key; one with present == false if the record does not give it.
  const Attr& attr(uint32_t key) const {
    for (const Attr& a : attrs)
      if (a.key == key) return a;
    static const Attr absent;
    return absent;
  }
};

struct ModelFile {
  uint32_t version = 0;
  std::string metadata_json;
  int64_t in_c = 0, in_h = 0, in_w = 0;
  uint32_t output_value = 0;
  std::vector<TensorDesc> tensors;
  std::vector<OpDesc> ops;
};

// `data` must stay alive as long as the returned descriptors are used.
ModelFile parse_model(const uint8_t* data, size_t size);

}  // namespace hbn

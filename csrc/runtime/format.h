// Reader of the .hbn model format (docs/format.md). parse_model() validates every size, offset,
// count, dtype and reference before use; anything wrong throws FormatError naming the problem.
// Op-level semantics (attribute ranges, tensor shapes, value shapes) are checked by graph.cc.
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace hbn {

class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

constexpr uint32_t kFormatVersion = 1;
constexpr size_t kHeaderSize = 128;
constexpr size_t kSectionAlign = 64;
constexpr uint32_t kAbsent = 0xFFFFFFFFu;

enum class DType : uint32_t { f32 = 1, bits = 2, u8 = 3 };

enum class OpType : uint32_t {
  conv_f32 = 1, conv_wbin = 2, conv_fbin = 3, relu = 4, max_pool = 5, avg_pool = 6,
  adaptive_avg_pool = 7, add = 8, concat = 9, flatten = 10, softmax = 11, lrn = 12,
  batchnorm = 13,
};
const char* op_type_name(OpType t);

enum AttrKey : uint32_t {
  kStrideH = 1, kStrideW = 2, kPadH = 3, kPadW = 4, kAct = 5, kInChannels = 6, kInputScale = 7,
  kKernelH = 8, kKernelW = 9, kCeilMode = 10, kCountIncludePad = 11, kOutH = 12, kOutW = 13,
  kSize = 14, kAlpha = 15, kBeta = 16, kK = 17, kLinear = 18, kMaxAttrKey = 18,
};

struct TensorDesc {
  DType dtype = DType::f32;
  std::vector<int64_t> dims;
  const uint8_t* data = nullptr;  // points into the file buffer (64-byte aligned offset)
  uint64_t nbytes = 0;
  int64_t numel() const;
};

struct Attr {
  bool present = false;
  bool is_float = false;
  int64_t i = 0;
  double f = 0.0;
};

struct OpDesc {
  OpType type = OpType::relu;
  std::string name;
  std::vector<uint32_t> inputs;   // value ids: 0 = graph input, op k produces value k + 1
  std::vector<uint32_t> tensors;  // slot -> tensor index or kAbsent
  Attr attrs[kMaxAttrKey + 1];
};

struct ModelFile {
  uint32_t version = 0;
  std::string metadata_json;
  int64_t in_c = 0, in_h = 0, in_w = 0;
  uint32_t output_value = 0;
  std::vector<TensorDesc> tensors;
  std::vector<OpDesc> ops;
};

// Number of tensor slots each op type has in the file (0 for ops without parameters).
int op_tensor_slots(OpType t);

// `data` must stay alive as long as the returned descriptors are used.
ModelFile parse_model(const uint8_t* data, size_t size);

}  // namespace hbn

// The list of op types and attribute keys of the .hbn format: the one place a code is given a
// name. Each op's schema (inputs, tensor slots, attributes and their ranges) and behaviour live
// in its unit under runtime/ops/ (op_def_<name>() there); op_registry.cc collects them from
// this list, the format reader, graph builder, Python bindings (hbn_engine.format) and the
// generated tables of docs/format.md all read that registry.
// Adding an op: one HBN_OPS line here plus its unit (see docs/architecture.md).
#pragma once
#include <cstdint>
#include <initializer_list>

// X(code, name): codes are part of the file format and never reused.
#define HBN_OPS(X)          \
  X(1, conv_f32)            \
  X(2, conv_wbin)           \
  X(3, conv_fbin)           \
  X(4, relu)                \
  X(5, max_pool)            \
  X(6, avg_pool)            \
  X(7, adaptive_avg_pool)   \
  X(8, add)                 \
  X(9, concat)              \
  X(10, flatten)            \
  X(11, softmax)            \
  X(12, lrn)                \
  X(13, batchnorm)           \
  X(14, prelu)              \
  X(15, clamp)              \
  X(16, log_softmax)        \
  X(17, pad)                \
  X(18, conv_grouped_f32)   \
  X(19, sign)              \
  X(20, conv_q8)            \
  X(21, input_norm)         \
  X(22, conv_wbin_q8)

// X(key, enumerator, name, type): type i64 or f64; each key has one fixed type.
#define HBN_ATTRS(X)                               \
  X(1, kStrideH, stride_h, i64)                    \
  X(2, kStrideW, stride_w, i64)                    \
  X(3, kPadH, pad_h, i64)                          \
  X(4, kPadW, pad_w, i64)                          \
  X(5, kAct, act, i64)                             \
  X(6, kInChannels, in_channels, i64)              \
  X(7, kInputScale, input_scale, i64)              \
  X(8, kKernelH, kernel_h, i64)                    \
  X(9, kKernelW, kernel_w, i64)                    \
  X(10, kCeilMode, ceil_mode, i64)                 \
  X(11, kCountIncludePad, count_include_pad, i64)  \
  X(12, kOutH, out_h, i64)                         \
  X(13, kOutW, out_w, i64)                         \
  X(14, kSize, size, i64)                          \
  X(15, kAlpha, alpha, f64)                        \
  X(16, kBeta, beta, f64)                          \
  X(17, kK, k, f64)                                \
  X(18, kLinear, linear, i64)                      \
  X(19, kMin, min, f64)                            \
  X(20, kMax, max, f64)                            \
  X(21, kPadTop, pad_top, i64)                     \
  X(22, kPadBottom, pad_bottom, i64)               \
  X(23, kPadLeft, pad_left, i64)                   \
  X(24, kPadRight, pad_right, i64)                 \
  X(25, kValue, value, f64)                        \
  X(26, kGroups, groups, i64)                      \
  X(27, kZero, zero, i64)                          \
  X(28, kThreshold, threshold, f64)                \
  X(29, kInputDomain, input_domain, i64)           \
  X(30, kInScale, in_scale, f64)                   \
  X(31, kInZero, in_zero, i64)

namespace hbn {

enum class OpType : uint32_t {
#define HBN_X(code, name) name = code,
  HBN_OPS(HBN_X)
#undef HBN_X
};

enum AttrKey : uint32_t {
#define HBN_X(key, id, name, type) id = key,
  HBN_ATTRS(HBN_X)
#undef HBN_X
};

enum class AttrType : uint32_t { i64 = 1, f64 = 2 };

namespace op_list_detail {
constexpr uint32_t max_of(std::initializer_list<uint32_t> l) {
  uint32_t m = 0;
  for (uint32_t v : l) m = v > m ? v : m;
  return m;
}
}  // namespace op_list_detail

// Largest op code and attribute key (arrays indexed by them are one longer).
#define HBN_X(code, ...) code,
constexpr uint32_t kMaxOpCode = op_list_detail::max_of({HBN_OPS(HBN_X)});
constexpr uint32_t kMaxAttrKey = op_list_detail::max_of({HBN_ATTRS(HBN_X)});
#undef HBN_X

}  // namespace hbn

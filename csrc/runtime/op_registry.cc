#include "runtime/op.h"

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "hbn/weight_layout.h"

namespace hbn {
namespace {

// Indexed by code; built once from HBN_OPS (each op_def_<name> lives in its unit).
const std::array<const OpDef*, kMaxOpCode + 1>& table() {
  static const std::array<const OpDef*, kMaxOpCode + 1> t = [] {
    std::array<const OpDef*, kMaxOpCode + 1> a{};
#define HBN_X(code, op)                                                             \
  a[code] = &op_def_##op();                                                         \
  if (a[code]->schema.type != OpType::op || std::strcmp(a[code]->schema.name, #op)) \
    throw std::logic_error("op unit " #op " defines the schema of another op");
    HBN_OPS(HBN_X)
#undef HBN_X
    return a;
  }();
  return t;
}

}  // namespace

const OpDef* op_def(uint32_t code) { return code <= kMaxOpCode ? table()[code] : nullptr; }

const OpSchema* op_schema(uint32_t code) {
  const OpDef* d = op_def(code);
  return d ? &d->schema : nullptr;
}

const std::vector<const OpSchema*>& op_schemas() {
  static const std::vector<const OpSchema*> all = [] {
    std::vector<const OpSchema*> v;
    for (const OpDef* d : table())
      if (d) v.push_back(&d->schema);
    return v;
  }();
  return all;
}

const std::vector<AttrInfo>& attr_infos() {
  static const std::vector<AttrInfo> all = {
#define HBN_X(key, id, name, type) {id, #name, AttrType::type},
      HBN_ATTRS(HBN_X)
#undef HBN_X
  };
  return all;
}

const AttrInfo* attr_info(uint32_t key) {
  for (const AttrInfo& a : attr_infos())
    if (a.key == key) return &a;
  return nullptr;
}

const char* op_type_name(OpType t) {
  const OpSchema* s = op_schema(static_cast<uint32_t>(t));
  return s ? s->name : "?";
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::bits: return "bits";
    case DType::u8: return "u8";
    case DType::i8: return "i8";
  }
  return "?";
}

int OpSchema::slot_index(const char* slot) const {
  for (size_t i = 0; i < slots.size(); ++i)
    if (std::strcmp(slots[i].name, slot) == 0) return static_cast<int>(i);
  return -1;
}

const AttrSpec* OpSchema::attr(AttrKey k) const {
  for (const AttrSpec& a : attrs)
    if (a.key == k) return &a;
  return nullptr;
}

size_t align_up(size_t v) {
  if (v > std::numeric_limits<size_t>::max() - (kAlignment - 1)) return std::numeric_limits<size_t>::max();
  return (v + kAlignment - 1) / kAlignment * kAlignment;
}

uint64_t sat_mul(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_mul_overflow(a, b, &r) ? std::numeric_limits<uint64_t>::max() : r;
}

uint64_t sat_add(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_add_overflow(a, b, &r) ? std::numeric_limits<uint64_t>::max() : r;
}

// BuildCtx ------------------------------------------------------------------------------------

BuildCtx::BuildCtx(const ModelFile& mf, const OpDesc& op, const OpSchema& schema,
                   std::vector<const ValueShape*> inputs)
    : mf_(mf), op_(op), schema_(schema), inputs_(std::move(inputs)) {}

void BuildCtx::fail(const std::string& msg) const {
  throw FormatError("op '" + op_.name + "' (" + schema_.name + "): " + msg);
}

int64_t BuildCtx::attr(AttrKey k) const {
  const AttrSpec* s = schema_.attr(k);
  if (!s) throw std::logic_error(std::string(schema_.name) + " reads an attribute it does not declare");
  return attr(k, s->lo, s->hi);
}

int64_t BuildCtx::attr(AttrKey k, int64_t lo, int64_t hi) const {
  const AttrSpec* s = schema_.attr(k);
  if (!s) throw std::logic_error(std::string(schema_.name) + " reads an attribute it does not declare");
  const char* name = attr_info(k)->name;
  const Attr& a = op_.attr(k);
  if (!a.present) {
    if (s->required) fail(std::string("missing attribute ") + name);
    return s->dflt;
  }
  lo = std::max(lo, s->lo);
  hi = std::min(hi, s->hi);
  if (a.i < lo || a.i > hi)
    fail(std::string("attribute ") + name + " = " + std::to_string(a.i) + " not in [" +
         std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return a.i;
}

bool BuildCtx::has_attr(AttrKey k) const {
  if (!schema_.attr(k)) throw std::logic_error(std::string(schema_.name) + " reads an attribute it does not declare");
  return op_.attr(k).present;
}

double BuildCtx::fattr(AttrKey k) const {
  const char* name = attr_info(k)->name;
  const Attr& a = op_.attr(k);
  if (!a.present) fail(std::string("missing attribute ") + name);
  if (!std::isfinite(a.f)) fail(std::string("attribute ") + name + " is not finite");
  return a.f;
}

const TensorDesc* BuildCtx::raw_tensor(const char* slot) const {
  const int i = schema_.slot_index(slot);
  if (i < 0) throw std::logic_error(std::string(schema_.name) + " reads a slot it does not declare");
  const uint32_t id = op_.tensors[static_cast<size_t>(i)];
  return id == kAbsent ? nullptr : &mf_.tensors[id];
}

const TensorDesc* BuildCtx::laid_out_tensor(const char* slot, const std::vector<int64_t>& dims) const {
  laid_out_ok_ = true;
  const TensorDesc* t = tensor(slot, dims, true);
  laid_out_ok_ = false;
  return t;
}

const TensorDesc* BuildCtx::tensor(const char* slot, const std::vector<int64_t>& dims) const {
  return tensor(slot, dims, schema_.slots[static_cast<size_t>(schema_.slot_index(slot))].required);
}

const TensorDesc* BuildCtx::tensor(const char* slot, const std::vector<int64_t>& dims,
                                   bool required) const {
  const TensorDesc* t = raw_tensor(slot);
  if (!t) {
    if (required) fail(std::string("missing tensor ") + slot);
    return nullptr;
  }
  const TensorSlot& s = schema_.slots[static_cast<size_t>(schema_.slot_index(slot))];
  if (t->dtype != s.dtype) fail(std::string("tensor ") + slot + " has the wrong dtype");
  if (t->layout && !laid_out_ok_)
    fail(std::string("tensor ") + slot + " is stored in kernel layout " + weight_layout_name(t->layout) +
         ", which this slot does not take");
  if (t->dims != dims) {
    std::string want, got;
    for (auto d : dims) want += std::to_string(d) + ",";
    for (auto d : t->dims) got += std::to_string(d) + ",";
    fail(std::string("tensor ") + slot + " has shape (" + got + ") expected (" + want + ")");
  }
  return t;
}

bool BuildCtx::vector_in_place(const TensorDesc* t, size_t align) const {
  return t && mf_.version >= 2 && reinterpret_cast<uintptr_t>(t->data) % align == 0;
}

bool BitRule::same(const BitRule& o) const {
  if (channels != o.channels || (flip == nullptr) != (o.flip == nullptr)) return false;
  for (int64_t c = 0; c < channels; ++c)  // by float value, as comparing the vectors did
    if (thr[c] != o.thr[c] || (flip && flip[c] != o.flip[c])) return false;
  return true;
}

void BuildCtx::check_finite(const TensorDesc* t, const char* slot, bool allow_inf) const {
  if (!t) return;
  // A kernel-layout tensor (format v2) is checked whole, padding included.
  const int64_t n = t->layout ? static_cast<int64_t>(t->nbytes / 4) : t->numel();
  for (int64_t i = 0; i < n; ++i) {
    float v;
    std::memcpy(&v, t->data + 4 * i, 4);
    if (std::isnan(v) || (!allow_inf && std::isinf(v)))
      fail(std::string("tensor ") + slot + " holds a non-finite value");
  }
}

}  // namespace hbn

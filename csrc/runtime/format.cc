#include "runtime/format.h"

#include <cstring>
#include <string>

#include "hbn/weight_layout.h"

namespace hbn {
namespace {

constexpr char kMagic[8] = {'H', 'B', 'N', 'M', 'O', 'D', 'E', 'L'};
constexpr size_t kGraphHeaderSize = 32;
constexpr size_t kTensorRecordSize = 64;
constexpr uint32_t kMaxNameLen = 256;
constexpr uint32_t kMaxInputs = 1024;
constexpr uint32_t kMaxAttrs = 64;
constexpr int64_t kMaxDim = int64_t(1) << 31;
// Smallest possible op record: type, name length, input count, tensor count, attr count.
constexpr size_t kMinOpBytes = 20;

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // unaligned-safe; the format is little-endian like every host we build for
  return v;
}

[[noreturn]] void fail(const std::string& msg) { throw FormatError(msg); }

// off + size <= limit without overflow.
void check_range(uint64_t off, uint64_t size, uint64_t limit, const std::string& what) {
  if (off > limit || size > limit - off)
    fail(what + ": offset " + std::to_string(off) + " + size " + std::to_string(size) +
         " exceeds " + std::to_string(limit) + " bytes");
}

class Cursor {
 public:
  Cursor(const uint8_t* base, uint64_t pos, uint64_t end) : base_(base), pos_(pos), end_(end) {}
  uint32_t u32(const std::string& what) { return take<uint32_t>(what); }
  template <typename T>
  T take(const std::string& what) {
    need(sizeof(T), what);
    T v = load<T>(base_ + pos_);
    pos_ += sizeof(T);
    return v;
  }
  const uint8_t* bytes(uint64_t n, const std::string& what) {
    need(n, what);
    const uint8_t* p = base_ + pos_;
    pos_ += n;
    return p;
  }

 private:
  void need(uint64_t n, const std::string& what) {
    if (n > end_ - pos_)
      fail("graph section truncated while reading " + what + " (needs " + std::to_string(n) +
           " bytes at offset " + std::to_string(pos_) + ")");
  }
  const uint8_t* base_;
  uint64_t pos_, end_;
};

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::bits: return 8;
    case DType::u8: return 1;
    case DType::i8: return 1;
  }
  return 0;
}

// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF): op names
// reach Python as str, so a bad one must fail here, not later in Model.layers.
bool valid_utf8(const uint8_t* s, size_t n) {
  for (size_t i = 0; i < n;) {
    const uint8_t c = s[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return false;
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    static const uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

}  // namespace

int64_t TensorDesc::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

ModelFile parse_model(const uint8_t* data, size_t size) {
  if (size < kHeaderSize)
    fail("file too small for the header (" + std::to_string(size) + " < " +
         std::to_string(kHeaderSize) + " bytes)");
  if (std::memcmp(data, kMagic, 8) != 0) fail("bad magic: not a .hbn file");
  ModelFile mf;
  mf.version = load<uint32_t>(data + 8);
  if (mf.version > kFormatVersion)
    fail("format version " + std::to_string(mf.version) + " is newer than this reader supports (" +
         std::to_string(kFormatVersion) + "); upgrade hbn_engine");
  if (mf.version < 1) fail("invalid format version " + std::to_string(mf.version));
  const uint32_t header_size = load<uint32_t>(data + 12);
  if (header_size != kHeaderSize) fail("header_size " + std::to_string(header_size) + " != 128");
  const uint64_t file_size = load<uint64_t>(data + 16);
  if (file_size != size)
    fail("file_size field says " + std::to_string(file_size) + " bytes but the file has " +
         std::to_string(size) + " (truncated or padded)");
  const uint64_t meta_off = load<uint64_t>(data + 24), meta_size = load<uint64_t>(data + 32);
  const uint64_t graph_off = load<uint64_t>(data + 40), graph_size = load<uint64_t>(data + 48);
  const uint64_t table_off = load<uint64_t>(data + 56), n_tensors = load<uint64_t>(data + 64);
  const uint64_t data_off = load<uint64_t>(data + 72), data_size = load<uint64_t>(data + 80);
  const struct { uint64_t off; const char* what; } sections[] = {
      {meta_off, "metadata"}, {graph_off, "graph"}, {table_off, "tensor table"}, {data_off, "data"}};
  for (const auto& s : sections)
    if (s.off % kSectionAlign)
      fail(std::string(s.what) + " section offset " + std::to_string(s.off) +
           " is not 64-byte aligned");
  check_range(meta_off, meta_size, size, "metadata section");
  check_range(graph_off, graph_size, size, "graph section");
  if (n_tensors > size / kTensorRecordSize)
    fail("tensor count " + std::to_string(n_tensors) + " cannot fit in the file");
  check_range(table_off, n_tensors * kTensorRecordSize, size, "tensor table");
  check_range(data_off, data_size, size, "data section");
  if (data_off < kHeaderSize) fail("data section overlaps the header");
  mf.metadata_json.assign(reinterpret_cast<const char*>(data + meta_off), meta_size);

  mf.tensors.resize(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const uint8_t* r = data + table_off + i * kTensorRecordSize;
    const std::string what = "tensor " + std::to_string(i);
    const uint32_t dtype = load<uint32_t>(r), ndim = load<uint32_t>(r + 4);
    if (dtype < 1 || dtype > 4) fail(what + ": unknown dtype code " + std::to_string(dtype));
    if (ndim < 1 || ndim > 4) fail(what + ": rank " + std::to_string(ndim) + " not in 1..4");
    TensorDesc& t = mf.tensors[i];
    t.dtype = static_cast<DType>(dtype);
    uint64_t count = 1;
    for (uint32_t d = 0; d < ndim; ++d) {
      const int64_t v = load<int64_t>(r + 8 + 8 * d);
      if (v < 1 || v > kMaxDim) fail(what + ": dimension " + std::to_string(d) + " = " +
                                     std::to_string(v) + " out of range");
      t.dims.push_back(v);
      // count <= 2^31 per factor and the product is bounded by the data size check below,
      // so bail out as soon as it exceeds the file: no overflow possible.
      count *= static_cast<uint64_t>(v);
      if (count > size) fail(what + ": shape has more elements than the file has bytes");
    }
    const uint64_t off = load<uint64_t>(r + 40);
    t.nbytes = load<uint64_t>(r + 48);
    if (mf.version >= 2) {  // version 1 wrote 0 there and never read it
      t.layout = load<uint32_t>(r + 56);
      const uint32_t spare = load<uint32_t>(r + 60);
      if (t.layout > kMaxWeightLayout) fail(what + ": unknown kernel layout id " + std::to_string(t.layout));
      if (spare) fail(what + ": reserved field after the layout id is " + std::to_string(spare) + ", not 0");
      const DType holds = t.layout == static_cast<uint32_t>(WeightLayout::f32_panel32) ? DType::f32 : DType::bits;
      if (t.layout && t.dtype != holds)
        fail(what + ": kernel layout " + weight_layout_name(t.layout) + " holds " + dtype_name(holds) +
             " weights, not dtype " + std::to_string(dtype));
    }
    if (t.layout == 0 && count * dtype_size(t.dtype) != t.nbytes)
      fail(what + ": nbytes " + std::to_string(t.nbytes) + " does not match its shape and dtype");
    if (t.layout && t.nbytes % kSectionAlign)
      fail(what + ": kernel layout " + weight_layout_name(t.layout) + " with nbytes " + std::to_string(t.nbytes) +
           ", not a multiple of 64");
    if (off % kSectionAlign) fail(what + ": data offset " + std::to_string(off) + " not 64-byte aligned");
    check_range(off, t.nbytes, data_size, what);
    t.data = data + data_off + off;
  }

  Cursor cur(data, graph_off, graph_off + graph_size);
  if (graph_size < kGraphHeaderSize) fail("graph section smaller than its 32-byte header");
  const uint32_t n_ops = cur.u32("op count");
  mf.output_value = cur.u32("output value");
  mf.in_c = cur.u32("input channels");
  mf.in_h = cur.u32("input height");
  mf.in_w = cur.u32("input width");
  cur.bytes(12, "graph header");
  if (n_ops == 0) fail("graph has no ops");
  if (n_ops > graph_size / kMinOpBytes)
    fail("op count " + std::to_string(n_ops) + " cannot fit in a " + std::to_string(graph_size) +
         "-byte graph section");
  mf.ops.resize(n_ops);
  for (uint32_t i = 0; i < n_ops; ++i) {
    OpDesc& op = mf.ops[i];
    std::string what = "op " + std::to_string(i);
    const uint32_t code = cur.u32(what + " type");
    op.schema = op_schema(code);
    if (!op.schema) fail(what + ": unknown op type code " + std::to_string(code));
    op.type = op.schema->type;
    const uint32_t name_len = cur.u32(what + " name length");
    if (name_len > kMaxNameLen)
      fail(what + ": name length " + std::to_string(name_len) + " > " + std::to_string(kMaxNameLen));
    const uint8_t* name = cur.bytes((name_len + 3) / 4 * 4, what + " name");
    if (!valid_utf8(name, name_len)) fail(what + ": name is not valid UTF-8");
    op.name.assign(reinterpret_cast<const char*>(name), name_len);
    what = "op " + std::to_string(i) + " (" + op.name + ", " + op.schema->name + ")";
    const uint32_t n_in = cur.u32(what + " input count");
    if (n_in > kMaxInputs) fail(what + ": " + std::to_string(n_in) + " inputs");
    for (uint32_t k = 0; k < n_in; ++k) {
      const uint32_t v = cur.u32(what + " inputs");
      if (v > i) fail(what + ": input value " + std::to_string(v) + " is not produced before it");
      op.inputs.push_back(v);
    }
    const uint32_t n_t = cur.u32(what + " tensor count");
    const size_t want_slots = op.schema->slots.size();
    if (n_t != want_slots)
      fail(what + ": " + std::to_string(n_t) + " tensor slots, expected " + std::to_string(want_slots));
    for (uint32_t k = 0; k < n_t; ++k) {
      const uint32_t t = cur.u32(what + " tensor references");
      if (t != kAbsent && t >= n_tensors)
        fail(what + ": tensor reference " + std::to_string(t) + " out of range (" +
             std::to_string(n_tensors) + " tensors)");
      op.tensors.push_back(t);
    }
    const uint32_t n_a = cur.u32(what + " attribute count");
    if (n_a > kMaxAttrs) fail(what + ": " + std::to_string(n_a) + " attributes");
    op.attrs.reserve(n_a);
    for (uint32_t k = 0; k < n_a; ++k) {
      const uint32_t key = cur.u32(what + " attribute key");
      const uint32_t type = cur.u32(what + " attribute type");
      const AttrInfo* info = attr_info(key);
      if (!info) fail(what + ": unknown attribute key " + std::to_string(key));
      const bool want_float = info->type == AttrType::f64;
      if (type != (want_float ? 2u : 1u))
        fail(what + ": attribute " + std::to_string(key) + " has type " + std::to_string(type));
      if (op.attr(key).present) fail(what + ": attribute " + std::to_string(key) + " given twice");
      op.attrs.emplace_back();
      Attr& a = op.attrs.back();
      a.key = key;
      a.present = true;
      a.is_float = want_float;
      if (want_float) a.f = cur.take<double>(what + " attribute value");
      else a.i = cur.take<int64_t>(what + " attribute value");
    }
  }
  if (mf.output_value < 1 || mf.output_value > n_ops)
    fail("output value " + std::to_string(mf.output_value) + " out of range 1.." + std::to_string(n_ops));
  return mf;
}

}  // namespace hbn

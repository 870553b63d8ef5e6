// The interface every op unit (runtime/ops/*.cc) implements. An op is defined by one OpDef: its
// schema (op_schema.h) and a build function that validates one node of a file (attributes,
// tensors, input shapes, through BuildCtx so every check names the op) and returns the node's
// OpImpl, which holds that op's own parameters (no struct with every op's fields) and does the
// rest: repack weights once (prepare), say how much scratch and work a batch needs, and run.
// The executor's passes talk to ops only through this interface.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hbn/threadpool.h"
#include "hbn/types.h"
#include "runtime/format.h"
#include "runtime/op_schema.h"
#include "runtime/ops.h"
#include "transform/output_transform.h"

namespace hbn {

// Per-image shape of a value (the batch dimension is chosen at run time). Activations are NHWC.
// `flat` marks values produced by flatten (or computed from a flat value): shown as [N, C].
struct ValueShape {
  int64_t c = 0, h = 0, w = 0;
  bool flat = false;
  int64_t per_image() const { return c * h * w; }
};

// Limits on what validation accepts (sizes every kernel's index arithmetic is safe with).
constexpr int64_t kMaxChannels = int64_t(1) << 20;
constexpr int64_t kMaxSpatial = int64_t(1) << 15;
constexpr int64_t kMaxPerImage = int64_t(1) << 28;  // elements of one image's activation
constexpr int kMaxKernel = 64;
constexpr int kMaxPoolKernel = 1024;

// One node of a file being validated: its record, input shapes and schema. Every failure
// throws FormatError("op '<name>' (<type>): ...").
class BuildCtx {
 public:
  BuildCtx(const ModelFile& mf, const OpDesc& op, const OpSchema& schema,
           std::vector<const ValueShape*> inputs);
  const OpSchema& schema() const { return schema_; }
  int n_inputs() const { return static_cast<int>(inputs_.size()); }
  const ValueShape& in(int k) const { return *inputs_[static_cast<size_t>(k)]; }

  // An i64 attribute within the schema's range (and [lo, hi] when given), or its default.
  int64_t attr(AttrKey k) const;
  int64_t attr(AttrKey k, int64_t lo, int64_t hi) const;
  double fattr(AttrKey k) const;  // an f64 attribute (required, finite)
  bool has_attr(AttrKey k) const;  // whether the file gives it (optional f64 attributes)
  // A tensor slot of the schema's dtype with exactly `dims` (null when absent and allowed).
  const TensorDesc* tensor(const char* slot, const std::vector<int64_t>& dims) const;
  const TensorDesc* tensor(const char* slot, const std::vector<int64_t>& dims, bool required) const;
  // A required slot as tensor() checks it, which may also be stored in a kernel layout
  // (TensorDesc::layout, format version 2; tensor() refuses those): the caller checks its size.
  const TensorDesc* laid_out_tensor(const char* slot, const std::vector<int64_t>& dims) const;
  // The slot's tensor without a shape check (the convolutions read their geometry from it).
  const TensorDesc* raw_tensor(const char* slot) const;
  // Float tensors: NaN never; infinities only when allow_inf.
  void check_finite(const TensorDesc* t, const char* slot, bool allow_inf) const;
  [[noreturn]] void fail(const std::string& msg) const;
  // Whether run() may read a float / byte vector tensor (scale, bias, thresholds) in place in
  // the model bytes: a format-version-2 file (whose contract already has run() read its
  // weights) and an address aligned for T. Otherwise the op copies it (version 1 files are
  // never read after load).
  bool vector_in_place(const TensorDesc* t, size_t align) const;

  ValueShape out;  // set by the op's build function

 private:
  const ModelFile& mf_;
  const OpDesc& op_;
  const OpSchema& schema_;
  std::vector<const ValueShape*> inputs_;
  mutable bool laid_out_ok_ = false;  // set by laid_out_tensor around its tensor() call
};

// What one sample costs, summed over ops and checked against Limits at load.
struct OpWork {
  uint64_t macs = 0;          // multiply-accumulates (convolutions)
  uint64_t window_reads = 0;  // input elements read by pooling / LRN windows
};

// How an op takes part in bit passing (the executor's bit plan, bit_plan.h).
enum class BitsOut {
  none,    // writes floats only
  kernel,  // its kernel can threshold its own output for a binary consumer (conv_fbin)
  pool,    // max-pool: pools bits, or packs the floats it pools
  concat,  // joins bit rows (operands ending on word boundaries)
};

// The sign rule a binary consumer applies to its float input: bit(c) = flip[c] ? x > thr[c] :
// x < thr[c] (thr all 0 and flip null: plain sign).
// thr and flip point into the model bytes (format version 2, read in place like the weights) or
// into the rule's own copies.
struct BitRule {
  const float* thr = nullptr;      // [channels]
  const uint8_t* flip = nullptr;   // [channels]; null: no flips
  int64_t channels = 0;
  std::vector<float> thr_copy;     // storage when not in place (no thresholds: zeros)
  std::vector<uint8_t> flip_copy;
  const uint8_t* flip_at(int64_t c) const { return flip ? flip + c : nullptr; }
  // Same thresholds and flips, by value.
  bool same(const BitRule& o) const;
};

class OpImpl;

// Everything one op reads and writes in one run; pointers into the arena.
struct RunArgs {
  int64_t n = 0;
  int n_in = 0;
  const uint8_t* const* in = nullptr;          // [n_in] float NHWC or packed bits
  const bool* in_bits = nullptr;               // [n_in]
  const ValueShape* const* in_shape = nullptr;  // [n_in]
  uint8_t* out = nullptr;
  const ValueShape* out_shape = nullptr;
  bool out_bits = false;
  // out_bits, BitsOut::kernel: the consumer's rule, at this value's channel offset.
  const float* out_thr = nullptr;
  const uint8_t* out_flip = nullptr;
  // out_bits, BitsOut::pool from floats: the consumer's rule as a pack target.
  const PackTarget* out_pack = nullptr;
  // out_bits, BitsOut::pool from bits: per bit, 1 where the comparison is "above" (OR).
  const word_t* or_mask = nullptr;
  // A packed copy of input 0 its producer wrote for this op (null: pack it yourself).
  const word_t* packed_in = nullptr;
  // Packed copies of this op's float output to write in the same pass.
  const PackSink* sinks = nullptr;
  int n_sinks = 0;
  // Fusion (fuse_plan.h). A residual add computed in this conv's output stage: `residual` (rows
  // of out_shape->c floats) added after the conv's activation, then ReLU when residual_relu;
  // out, sinks and out_shape are then the add's.
  const float* residual = nullptr;
  bool residual_relu = false;
  // A max-pool run on this conv's output rows as they finish: the pool op and the RunArgs its
  // own run would get.
  const OpImpl* row_pool = nullptr;
  const RunArgs* row_pool_args = nullptr;
  // A max-pool that absorbed the concat before it (OpImpl::pools_concat): in[0, n_in) are the
  // concat's float operands, joined along channels.
  bool concat_in = false;
  uint8_t* scratch = nullptr;
  ThreadPool* pool = nullptr;
  const float* in_f(int k) const { return reinterpret_cast<const float*>(in[k]); }
  float* out_f() const { return reinterpret_cast<float*>(out); }
};

class OpImpl {
 public:
  virtual ~OpImpl() = default;
  // Load-time work after validation (weight repacking). The TensorDesc pointers BuildCtx gave
  // the op stay valid until prepare() returns, not after (the executor frees the records); the
  // model bytes they point into live as long as the op.
  virtual void prepare() {}
  // After prepare: the model bytes run() reads in place (kernel-layout weights, format version
  // 2), {nullptr, 0} if none. The executor releases every other mapped page after load.
  virtual std::pair<const uint8_t*, size_t> in_place_bytes() const { return {nullptr, 0}; }
  // Every range of the model bytes run() reads: in_place_bytes() and, format version 2, the
  // small parameter vectors read in place too (BuildCtx::vector_in_place). The executor keeps
  // these pages mapped and releases the rest.
  virtual void file_ranges(std::vector<std::pair<const uint8_t*, size_t>>& out) const {
    const auto r = in_place_bytes();
    if (r.second) out.push_back(r);
  }
  virtual OpWork work() const { return {}; }
  // Scratch for a batch of n; in_bits / packed_in as the run will see them.
  virtual size_t scratch_bytes(int64_t n, bool in_bits, bool packed_in) const { return 0; }
  virtual void run(const RunArgs& a) const = 0;
  // Bit passing: the rule by which this op binarizes input 0 when it can take it as bits.
  virtual const BitRule* bit_input() const { return nullptr; }
  virtual BitsOut bits_out() const { return BitsOut::none; }
  // Whether its kernel can write packed copies of its float output (RunArgs::sinks).
  virtual bool writes_packed_copies() const { return false; }
  // Pixel subsampling of a packed copy of input 0 written for this op (bit plan sides): a 1x1
  // unpadded strided conv reads only pixels (y * sh, x * sw), so its copy holds only those
  // ([n][ceil(h/sh)][ceil(w/sw)] words rows). {1, 1}: the full input.
  virtual std::pair<int, int> packed_in_stride() const { return {1, 1}; }
  // Fusion (fuse_plan.h): a conv that adds RunArgs::residual in its output stage (and writes
  // RunArgs::sinks for float output);
  virtual bool takes_residual() const { return false; }
  // such a conv whose output may be its residual's own buffer (written in place when the
  // residual dies there): its output stage reads each residual element before it writes the
  // same output element, and no other element, from any thread; and it has read its inputs
  // before its output stage starts (e.g. packed them into scratch);
  virtual bool residual_in_place() const { return false; }
  // an add of two float inputs (*relu: its ReLU after the sum);
  virtual bool residual_add(bool* relu) const { return false; }
  // a float conv that hands finished output rows to RunArgs::row_pool;
  virtual bool takes_row_pool() const { return false; }
  // a max-pool of floats that computes output rows [r0, r1) (row = image * out.h + y) of the
  // run `a` describes, in the calling thread.
  virtual const PoolParams* row_pool() const { return nullptr; }
  virtual void run_pool_rows(const RunArgs& a, int64_t r0, int64_t r1) const {}
  // a max-pool of floats that can read a concat's operands in place of its output
  // (RunArgs::concat_in): max commutes with the channel join.
  virtual bool pools_concat() const { return false; }

  std::vector<ValueShape> in;  // input shapes, set by build_graph
  ValueShape out;
};

struct OpDef {
  OpSchema schema;
  std::unique_ptr<OpImpl> (*build)(BuildCtx& ctx);
};

// The registry (op_registry.cc): every op of HBN_OPS, null for an unknown code.
const OpDef* op_def(uint32_t code);

// Declared for every op of the list; each defined in its unit.
#define HBN_X(code, name) const OpDef& op_def_##name();
HBN_OPS(HBN_X)
#undef HBN_X

size_t align_up(size_t v);
// Saturating products / sums for sizes and work counts (a hostile file cannot wrap them).
uint64_t sat_mul(uint64_t a, uint64_t b);
uint64_t sat_add(uint64_t a, uint64_t b);

}  // namespace hbn

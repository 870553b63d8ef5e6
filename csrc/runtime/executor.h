// The graph executor: owns the model bytes (never copied: tensors point into them), the
// validated graph with each op's prepared kernels, a thread pool and the activation arena.
// Four passes, each its own module: the bit plan (bit_plan.h: which values travel as packed
// bits), the fuse plan (fuse_plan.h: adds and max-pools computed in the output stage of the conv
// before them; off with HBN_NO_FUSE=1 at load), the memory plan (memory_plan.h: one arena per batch size, buffers whose lifetimes do
// not overlap share memory, one scratch region for the hungriest op) and execution (here: each
// op's OpImpl::run on arena pointers), so run() allocates nothing once a batch size is planned.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hbn/threadpool.h"
#include "runtime/bit_plan.h"
#include "runtime/fuse_plan.h"
#include "runtime/format.h"
#include "runtime/graph.h"
#include "runtime/limits.h"
#include "runtime/memory_plan.h"
#include "runtime/model_bytes.h"

namespace hbn {

class Executor {
 public:
  // Parses and validates `bytes` (throws FormatError; ResourceLimitError when the model needs
  // more than `limits` per sample) and prepares every kernel. Tensors point into `bytes`, which
  // the executor keeps alive (for a borrowed span the caller must); nothing is copied. With
  // bit_passing off every value stays float (the reference path the bit-domain fusions are
  // tested against).
  explicit Executor(ModelBytes bytes, bool bit_passing = true, const Limits& limits = {});
  // Convenience: takes the vector over (ModelBytes::from_vector).
  explicit Executor(std::vector<uint8_t> bytes, bool bit_passing = true, const Limits& limits = {})
      : Executor(ModelBytes::from_vector(std::move(bytes)), bit_passing, limits) {}
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  const Graph& graph() const { return graph_; }
  // The graph's ops in execution order: name as in the file and kind (fprec / wbin / fbin for
  // convolutions, else the op type name).
  int op_count() const { return static_cast<int>(graph_.nodes.size()); }
  const std::string& op_name(int i) const { return graph_.nodes.at(static_cast<size_t>(i)).name; }
  std::string op_kind(int i) const { return graph_.nodes.at(static_cast<size_t>(i)).kind(); }
  const char* op_type(int i) const { return graph_.nodes.at(static_cast<size_t>(i)).schema->name; }

  const std::string& metadata_json() const { return file_.metadata_json; }
  uint32_t format_version() const { return file_.version; }
  const Limits& limits() const { return limits_; }
  // Bytes of parameters as stored in the file (binary weights at 1 bit each).
  size_t param_bytes() const { return param_bytes_; }
  // Bytes of the model's buffer that run() reads in place (format version 2: weights stored in
  // their kernel's layout, and those convs' scale / bias / threshold vectors): shared file pages
  // for a mapped file, not copied.
  size_t in_place_bytes() const { return in_place_bytes_; }
  // Per-sample work of the whole graph (checked against limits at load).
  const OpWork& work_per_sample() const { return work_; }
  // Value ids held as packed bits for a binary consumer (its producer thresholds them).
  // Value 0 (the model input) is bits when its only path forward is binary: it is then packed
  // straight from the NCHW input.
  bool value_is_bits(int value) const { return bits_.value_bits[static_cast<size_t>(value)]; }
  // Nodes whose float output also gets packed copies, written in the same pass, for binary
  // consumers that would otherwise each re-read and pack it (a residual add or max-pool that
  // feeds both a float path and FullBinConvs): one entry per distinct consumer threshold set.
  int packed_copies(int node) const { return static_cast<int>(bits_.nodes[static_cast<size_t>(node)].sides_out.size()); }
  // Fusion (fuse_plan.h): the node that computes node `node` in its own pass (a conv computing
  // the residual add or max-pool after it), or -1 when the node runs itself.
  int fused_into(int node) const { return fuse_.nodes[static_cast<size_t>(node)].absorbed_by; }
  // Whether conv `node` writes its fused add's value over the residual (NodeFusePlan::in_place).
  bool residual_in_place(int node) const { return fuse_.nodes[static_cast<size_t>(node)].in_place; }

  int num_threads() const { return threads_.load(std::memory_order_relaxed); }
  void set_num_threads(int n);

  // Output shape for a batch of n >= 1: {n, C} for flat outputs, else {n, C, H, W}. Throws
  // std::invalid_argument for n < 1.
  std::vector<int64_t> output_shape(int64_t n) const;
  // Arena bytes a batch of n needs (planned, not allocated). Throws std::invalid_argument for
  // n < 1 and ResourceLimitError beyond limits().max_arena_bytes.
  size_t planned_bytes(int64_t n);
  // Arena bytes held now (0 before the first run and after a run far larger than usual).
  size_t arena_capacity() const { return arena_capacity_; }

  // in: NCHW float with element strides; out: contiguous NCHW (or [n, C]).
  // Thread-safe (one run at a time per executor). After a run far larger than usual (its arena
  // over keep_arena_bytes() = max(Limits::max_kept_arena_bytes, batch-1 arena) and over 4x the
  // previous run's) the arena is given back, so one huge batch does not pin its memory for the
  // model's life; a second such run in a row keeps it (big batches are then the usual).
  void run(const float* in, int64_t n, const int64_t strides[4], float* out);
  size_t keep_arena_bytes() const { return keep_arena_bytes_; }
  // True when the model takes images: its input is read only by an input_norm op (exported with
  // input_norm), so uint8 pixels are a valid input.
  bool takes_pixels() const { return takes_pixels_; }
  // run() for uint8 pixels (element strides in NCHW order, so NHWC buffers need no copy): each
  // pixel becomes the float of its value at the input conversion, exactly what run() would get
  // from the same pixels as float32. Throws std::invalid_argument unless takes_pixels().
  void run_u8(const uint8_t* in, int64_t n, const int64_t strides[4], float* out);

  // Per-op timing of `repeats` runs: times[r * (nodes + 2) + k] is the seconds of step k in run
  // r, where step 0 is the NCHW->NHWC input conversion, steps 1..nodes the graph's ops in order
  // and the last step the output conversion (an op the fuse plan computes inside another op's
  // step reads 0); totals[r] is run r end to end. Timed with a steady
  // clock around each step (the clock reads add well under a microsecond per op).
  void profile(const float* in, int64_t n, const int64_t strides[4], float* out, int repeats,
               std::vector<double>& times, std::vector<double>& totals);

 private:
  struct Plan {
    int64_t n = 0;
    MemoryPlan mem;  // offsets indexed by buffer id (value_buf_, side_buf_)
  };
  const Plan& plan_for(int64_t n);  // computed on first use, checked against limits_
  uint8_t* arena_for(const Plan& plan);
  void release_large_arena(size_t need);
  size_t value_bytes(int value, int64_t n) const;
  void run_node(int i, const Plan& plan, uint8_t* arena);
  // Packed copies of node i's value that hold only some pixels (SidePlan::sub_h/sub_w).
  void write_subsampled_sides(int i, const Plan& plan, uint8_t* arena);
  RunArgs node_args(int i, const Plan& plan, uint8_t* arena, const uint8_t** in_ptrs, PackSink* sinks);
  void run_input(const float* in, int64_t n, const int64_t strides[4], const Plan& plan, uint8_t* arena);
  void check_work() const;
  void run_graph(const Plan& plan, uint8_t* arena, int64_t n, float* out);

  ModelBytes bytes_;
  Limits limits_;
  ModelFile file_;
  Graph graph_;
  size_t param_bytes_ = 0;
  size_t in_place_bytes_ = 0;
  OpWork work_;
  BitPlan bits_;
  FusePlan fuse_;
  // Buffer ids of the memory plan: one per value, one per packed copy (side).
  std::vector<int> value_buf_, side_buf_;
  std::vector<BufferReq> buffer_template_;  // def / last_use per buffer id (sizes per batch)
  // Reused per run (sized at load: run() allocates nothing).
  struct NodeIO {
    std::vector<const ValueShape*> in_shape;
    std::unique_ptr<bool[]> in_bits;
  };
  std::vector<NodeIO> io_;
  std::vector<const uint8_t*> in_ptrs_, pool_in_ptrs_;
  std::vector<PackSink> sink_buf_, pool_sink_buf_;
  ThreadPool pool_;
  std::atomic<int> threads_{1};
  std::mutex run_mu_;
  std::map<int64_t, Plan> plans_;
  uint8_t* arena_ = nullptr;
  size_t arena_capacity_ = 0;
  size_t keep_arena_bytes_ = 0;
  size_t last_need_ = 0;  // arena bytes the previous run needed
  bool takes_pixels_ = false;
};

}  // namespace hbn

// The graph executor: owns the parsed file, the prepared kernels (weights repacked once at
// load), a thread pool and the activation arena. Buffers are planned once per batch size:
// every value gets an offset in one arena (values whose lifetimes do not overlap share memory)
// plus one scratch region sized for the hungriest op, so run() allocates nothing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bconv/bconv.h"
#include "conv/conv_f32.h"
#include "hbn/threadpool.h"
#include "runtime/format.h"
#include "runtime/graph.h"
#include "runtime/model_bytes.h"
#include "runtime/ops.h"

namespace hbn {

class Executor {
 public:
  // Parses and validates `bytes` (throws FormatError) and prepares every kernel. With
  // bit_passing off every value stays float (the reference path the bit-domain fusions are
  // tested against).
  // The span is never copied: parsed tensors point into it, and `bytes.owner` (a vector, a
  // mapping, or nothing for a caller-owned buffer) is kept alive as long as the executor.
  explicit Executor(ModelBytes bytes, bool bit_passing = true);
  explicit Executor(std::vector<uint8_t> bytes, bool bit_passing = true)
      : Executor(ModelBytes::from_vector(std::move(bytes)), bit_passing) {}
  ~Executor();

  const Graph& graph() const { return graph_; }
  const std::string& metadata_json() const { return file_.metadata_json; }
  uint32_t format_version() const { return file_.version; }
  // The graph's ops in execution order: name and kind ("fprec", "wbin", "fbin" for
  // convolutions, else the op type name).
  int op_count() const { return static_cast<int>(graph_.nodes.size()); }
  const std::string& op_name(int i) const { return graph_.nodes[static_cast<size_t>(i)].name; }
  std::string op_kind(int i) const { return graph_.nodes[static_cast<size_t>(i)].kind(); }
  // Bytes of parameters as stored in the file (binary weights at 1 bit each).
  size_t param_bytes() const { return param_bytes_; }
  // Value ids held as packed bits for a binary consumer (its producer thresholds them).
  // Value 0 (the model input) is bits when its only path forward is binary: it is then packed
  // straight from the NCHW input.
  bool value_is_bits(int value) const { return value_bits_[value]; }
  // Nodes whose float output also gets packed copies, written in the same pass, for binary
  // consumers that would otherwise each re-read and pack it (a residual add or max-pool that
  // feeds both a float path and FullBinConvs): one entry per distinct consumer threshold set.
  int packed_copies(int node) const { return static_cast<int>(node_sides_[node].size()); }

  int num_threads() const { return pool_.num_threads(); }
  void set_num_threads(int n);

  // Output shape for a batch of n: {n, C} for flat outputs, else {n, C, H, W}.
  std::vector<int64_t> output_shape(int64_t n) const;
  // Arena bytes planned for batch n (plans if needed).
  size_t planned_bytes(int64_t n);

  // in: NCHW float with element strides; out: contiguous NCHW (or [n, C]).
  // Thread-safe (one run at a time per executor).
  void run(const float* in, int64_t n, const int64_t strides[4], float* out);

  // Per-op timing of `repeats` runs: times[r * (nodes + 2) + k] is the seconds of step k in run
  // r, where step 0 is the NCHW->NHWC input conversion, steps 1..nodes the graph's ops in order
  // and the last step the output conversion; totals[r] is run r end to end. Timed with a steady
  // clock around each step (the clock reads add well under a microsecond per op).
  void profile(const float* in, int64_t n, const int64_t strides[4], float* out, int repeats,
               std::vector<double>& times, std::vector<double>& totals);

 private:
  struct Prepared;  // per-node kernels and parameter copies
  struct Plan {
    int64_t n = 0;
    size_t arena_bytes = 0;
    size_t scratch_offset = 0, scratch_bytes = 0;
    std::vector<size_t> value_offset;  // values, then sides
  };
  // Returns the plan for batch n, computing it on first use (plans are kept per batch size).
  const Plan& plan_for(int64_t n);
  size_t value_bytes(int value, int64_t n) const;
  size_t scratch_bytes_for(int node, int64_t n) const;
  void run_node(int i, const Plan& plan, uint8_t* arena);
  void run_input(const float* in, int64_t n, const int64_t strides[4], const Plan& plan, uint8_t* arena);
  void plan_sides();

  ModelBytes bytes_;
  ModelFile file_;
  Graph graph_;
  size_t param_bytes_ = 0;
  std::vector<std::unique_ptr<Prepared>> prepared_;
  std::vector<bool> value_bits_;
  std::vector<int> bits_consumer_;  // node index whose thresholds a bit-producer applies, or -1
  std::vector<int64_t> bits_offset_;  // first of those thresholds' channels (after a concat)
  // Packed copies of float values ("sides"): buffer id value_count + k in a plan.
  struct Side {
    int value = 0;
    std::vector<int> consumers;  // conv_fbin nodes reading it
  };
  std::vector<Side> sides_;
  std::vector<PackTarget> side_targets_;
  std::vector<std::vector<int>> node_sides_;  // sides a node writes
  std::vector<int> conv_side_;                // side a conv_fbin reads, or -1
  std::vector<PackSink> sink_buf_;            // per-run sink list (sized at load: no allocation)
  PackTarget input_target_;                   // the input's pack rule when value 0 is bits
  ThreadPool pool_;
  std::mutex run_mu_;
  std::map<int64_t, Plan> plans_;
  uint8_t* arena_ = nullptr;
  size_t arena_capacity_ = 0;
};

}  // namespace hbn

#include "runtime/executor.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

namespace hbn {
namespace {

// Plans kept per executor; a caller cycling through many batch sizes replans the oldest.
constexpr size_t kMaxPlans = 32;

std::string mib(uint64_t b) { return std::to_string((b + (1 << 20) - 1) >> 20) + " MiB"; }

}  // namespace

Executor::Executor(ModelBytes bytes, bool bit_passing, const Limits& limits)
    : bytes_(std::move(bytes)), limits_(limits), pool_(1) {
  file_ = parse_model(bytes_.data, bytes_.size);
  graph_ = build_graph(file_);
  for (const auto& t : file_.tensors) param_bytes_ += t.nbytes;
  for (const Node& nd : graph_.nodes) {
    const OpWork w = nd.impl->work();
    work_.macs = sat_add(work_.macs, w.macs);
    work_.window_reads = sat_add(work_.window_reads, w.window_reads);
  }
  check_work();  // before any kernel is prepared
  // The convolutions release the file pages of the weights they repack as they go (ops/conv.cc).
  for (Node& nd : graph_.nodes) nd.impl->prepare();
  // The parsed records (op names, attributes, tensor descriptors: ~0.4 KB per op) are not
  // needed once every op is prepared; freed now, the planners' allocations below reuse their
  // memory. What a small model keeps on the heap is mostly this kind of fixed cost
  // (docs/embedding.md). Move-assigned: `= {}` is the initializer-list assignment, which keeps
  // the capacity.
  file_.ops = std::vector<OpDesc>();
  file_.tensors = std::vector<TensorDesc>();
  bits_ = plan_bits(graph_, bit_passing);
  // Pixels are a valid input when the input's every reader is the model's normalisation.
  bool any_reader = false, only_norm = true;
  for (const Node& nd : graph_.nodes)
    for (int v : nd.inputs)
      if (v == 0) {
        any_reader = true;
        only_norm = only_norm && nd.schema->type == OpType::input_norm;
      }
  takes_pixels_ = any_reader && only_norm && !bits_.value_bits[0];
  fuse_ = plan_fusions(graph_, bits_, !fusion_disabled_by_env());

  // Buffer ids in allocation order: the input, then per op its value and the packed copies it
  // writes. Lifetimes: defined at the producing step, alive until the last reader's step.
  const int n_nodes = static_cast<int>(graph_.nodes.size());
  value_buf_.assign(n_nodes + 1, -1);
  side_buf_.assign(bits_.sides.size(), -1);
  std::vector<int> last_use(n_nodes + 1, -1);
  for (int i = 0; i < n_nodes; ++i)
    for (int v : graph_.nodes[i].inputs) last_use[v] = std::max(last_use[v], i);
  // An absorbed node reads its inputs in the absorbing node's pass (a concat absorbed by the
  // max-pool after it: its operands live until the pool runs).
  for (int i = 0; i < n_nodes; ++i)
    if (fuse_.nodes[i].absorbed_by >= 0)
      for (int v : graph_.nodes[i].inputs) last_use[v] = std::max(last_use[v], fuse_.nodes[i].absorbed_by);
  last_use[graph_.output] = n_nodes;  // lives to the end (copied out after the last op)
  auto add_buffer = [&](int def, int last) {
    buffer_template_.push_back({0, def, last});
    return static_cast<int>(buffer_template_.size()) - 1;
  };
  value_buf_[0] = add_buffer(-1, last_use[0]);
  for (int i = 0; i < n_nodes; ++i) {
    // A fused node's value and packed copies are written in the pass of the node computing it.
    const int def = fuse_.nodes[i].absorbed_by >= 0 ? fuse_.nodes[i].absorbed_by : i;
    if (def != i && fuse_.nodes[def].add_node == i && fuse_.nodes[def].in_place) {
      // Written over the residual, which dies in this pass: one buffer for both values.
      const int b = value_buf_[fuse_.nodes[def].residual];
      value_buf_[i + 1] = b;
      buffer_template_[b].last_use = std::max(buffer_template_[b].last_use, last_use[i + 1]);
    } else {
      value_buf_[i + 1] = add_buffer(def, last_use[i + 1]);
    }
    for (int k : bits_.nodes[i].sides_out) {
      int last = -1;
      for (int j : bits_.sides[k].consumers) last = std::max(last, j);
      side_buf_[k] = add_buffer(def, last);
    }
  }

  io_.resize(n_nodes);
  size_t max_in = 1;
  for (int i = 0; i < n_nodes; ++i) {
    const Node& nd = graph_.nodes[i];
    io_[i].in_bits = std::make_unique<bool[]>(nd.inputs.size());
    for (size_t k = 0; k < nd.inputs.size(); ++k) {
      io_[i].in_shape.push_back(&graph_.shape(nd.inputs[k]));
      io_[i].in_bits[k] = bits_.value_bits[nd.inputs[k]];
    }
    max_in = std::max(max_in, nd.inputs.size());
  }
  in_ptrs_.resize(max_in);
  pool_in_ptrs_.resize(max_in);
  sink_buf_.resize(std::max<size_t>(bits_.max_sides_per_node, 1));
  pool_sink_buf_.resize(std::max<size_t>(bits_.max_sides_per_node, 1));

  const size_t sample_bytes = plan_for(1).mem.arena_bytes;
  if (sample_bytes > limits_.max_sample_arena_bytes)
    throw ResourceLimitError("the model needs " + mib(sample_bytes) + " of activations per sample, over the limit of " +
                             mib(limits_.max_sample_arena_bytes) + " (max_sample_arena_bytes)");
  keep_arena_bytes_ = std::max<uint64_t>(limits_.max_kept_arena_bytes, align_up(sample_bytes));
  // After load run() reads the model bytes only where an op runs on them in place (format
  // version 2: weights stored in their kernel's layout, and the small parameter vectors); every
  // other mapped page the load touched - headers, tables, weights repacked into the kernels'
  // memory - goes back to the page cache. Acts only on a live file mapping.
  std::vector<std::pair<const uint8_t*, size_t>> kept;
  for (const Node& nd : graph_.nodes) nd.impl->file_ranges(kept);
  for (const auto& r : kept) in_place_bytes_ += r.second;
  std::sort(kept.begin(), kept.end());
  const uint8_t* from = bytes_.data;
  for (const auto& r : kept) {
    if (r.first > from) release_file_pages(from, static_cast<size_t>(r.first - from));
    from = std::max(from, r.first + r.second);
  }
  const uint8_t* end = bytes_.data + bytes_.size;
  if (end > from) release_file_pages(from, static_cast<size_t>(end - from));
}

void Executor::check_work() const {
  if (work_.macs > limits_.max_macs_per_sample)
    throw ResourceLimitError("the model needs " + std::to_string(work_.macs) +
                             " multiply-accumulates per sample, over the limit of " +
                             std::to_string(limits_.max_macs_per_sample) + " (max_macs_per_sample)");
  if (work_.window_reads > limits_.max_pool_reads_per_sample)
    throw ResourceLimitError("the model's pooling windows read " + std::to_string(work_.window_reads) +
                             " elements per sample, over the limit of " +
                             std::to_string(limits_.max_pool_reads_per_sample) + " (max_pool_reads_per_sample)");
}

Executor::~Executor() { std::free(arena_); }

void Executor::set_num_threads(int n) {
  std::lock_guard<std::mutex> lock(run_mu_);
  pool_.set_num_threads(std::max(1, n));
  threads_.store(pool_.num_threads(), std::memory_order_relaxed);
}

std::vector<int64_t> Executor::output_shape(int64_t n) const {
  if (n < 1) throw std::invalid_argument("batch size must be >= 1, got " + std::to_string(n));
  const ValueShape& s = graph_.shape(graph_.output);
  if (s.flat) return {n, s.c};
  return {n, s.c, s.h, s.w};
}

size_t Executor::value_bytes(int value, int64_t n) const {
  // Saturating: a batch beyond any memory makes the sum exceed every limit instead of wrapping.
  if (fuse_.elided[static_cast<size_t>(value)]) return 0;  // consumed inside a fused op, never stored
  const ValueShape& s = graph_.shape(value);
  const uint64_t per_image = bits_.value_bits[value]
                                 ? static_cast<uint64_t>(s.h * s.w * words_for(s.c)) * sizeof(word_t)
                                 : static_cast<uint64_t>(s.per_image()) * sizeof(float);
  return align_up(sat_add(sat_mul(static_cast<uint64_t>(n), per_image), kOverReadBytes));
}

const Executor::Plan& Executor::plan_for(int64_t n) {
  if (n < 1) throw std::invalid_argument("batch size must be >= 1, got " + std::to_string(n));
  auto it = plans_.find(n);
  if (it != plans_.end()) return it->second;
  const auto over = [&](uint64_t bytes) {
    return ResourceLimitError("a batch of " + std::to_string(n) + " needs " +
                              (bytes == UINT64_MAX ? std::string("more than 2^64 bytes") : mib(bytes)) +
                              " of activations, over the limit of " + mib(limits_.max_arena_bytes) +
                              " (max_arena_bytes)");
  };
  std::vector<BufferReq> bufs = buffer_template_;
  uint64_t total = 0;
  for (size_t v = 0; v < value_buf_.size(); ++v) {  // a shared buffer (in-place residual) counts once
    BufferReq& b = bufs[value_buf_[v]];
    const size_t bytes = value_bytes(static_cast<int>(v), n);
    if (bytes > b.bytes) {
      total = sat_add(total - b.bytes, bytes);
      b.bytes = bytes;
    }
  }
  for (size_t k = 0; k < side_buf_.size(); ++k) {
    const SidePlan& sp = bits_.sides[k];
    const ValueShape& s = graph_.shape(sp.value);
    const int64_t h = (s.h + sp.sub_h - 1) / sp.sub_h, w = (s.w + sp.sub_w - 1) / sp.sub_w;
    const uint64_t per_image = static_cast<uint64_t>(h * w * words_for(s.c)) * sizeof(word_t);
    bufs[side_buf_[k]].bytes = align_up(sat_add(sat_mul(static_cast<uint64_t>(n), per_image), kOverReadBytes));
    total = sat_add(total, bufs[side_buf_[k]].bytes);
  }
  // The kernels index a batch with int; the value sizes bound everything else.
  if (total > limits_.max_arena_bytes || n > INT_MAX) throw over(total);
  size_t scratch = 0;
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    const Node& nd = graph_.nodes[i];
    scratch = std::max(scratch, nd.impl->scratch_bytes(n, bits_.value_bits[nd.inputs[0]], bits_.nodes[i].side_in >= 0));
  }
  Plan plan;
  plan.n = n;
  plan.mem = plan_memory(bufs, scratch, kAlignment);
  if (plan.mem.arena_bytes > limits_.max_arena_bytes) throw over(plan.mem.arena_bytes);
  if (plans_.size() >= kMaxPlans) plans_.erase(plans_.begin());
  return plans_.emplace(n, std::move(plan)).first->second;
}

uint8_t* Executor::arena_for(const Plan& plan) {
  const size_t need = align_up(plan.mem.arena_bytes);
  if (need > arena_capacity_) {
    std::free(arena_);
    arena_ = nullptr;
    arena_capacity_ = 0;
    void* mem = std::aligned_alloc(kAlignment, need);
    if (!mem) throw std::bad_alloc();
    arena_ = static_cast<uint8_t*>(mem);
    arena_capacity_ = need;
  }
  return arena_;
}

void Executor::release_large_arena(size_t need) {
  // "Far larger than usual": over the kept size and over 4x the previous run's need. A caller
  // who always runs big batches keeps the arena (the second big run in a row keeps it).
  const bool far_larger = need / 4 > last_need_;
  last_need_ = need;
  if (arena_capacity_ <= keep_arena_bytes_ || !far_larger) return;
  std::free(arena_);
  arena_ = nullptr;
  arena_capacity_ = 0;
}

size_t Executor::planned_bytes(int64_t n) {
  std::lock_guard<std::mutex> lock(run_mu_);
  return plan_for(n).mem.arena_bytes;
}

void Executor::run(const float* in, int64_t n, const int64_t strides[4], float* out) {
  std::lock_guard<std::mutex> lock(run_mu_);
  const Plan& plan = plan_for(n);
  uint8_t* arena = arena_for(plan);
  run_input(in, n, strides, plan, arena);
  run_graph(plan, arena, n, out);
}

void Executor::run_graph(const Plan& plan, uint8_t* arena, int64_t n, float* out) {
  for (size_t i = 0; i < graph_.nodes.size(); ++i) run_node(static_cast<int>(i), plan, arena);
  const ValueShape& os = graph_.shape(graph_.output);
  nhwc_to_nchw(reinterpret_cast<const float*>(arena + plan.mem.offset[value_buf_[graph_.output]]), n,
               os.c, os.h, os.w, out, pool_);
  release_large_arena(plan.mem.arena_bytes);
}

void Executor::run_u8(const uint8_t* in, int64_t n, const int64_t strides[4], float* out) {
  if (!takes_pixels_)
    throw std::invalid_argument("this model takes float input only: uint8 images need a model "
                                "exported with input_norm=(mean, std) (its first op normalises pixels)");
  std::lock_guard<std::mutex> lock(run_mu_);
  const Plan& plan = plan_for(n);
  uint8_t* arena = arena_for(plan);
  const ValueShape& is = graph_.input;
  float* dst = reinterpret_cast<float*>(arena + plan.mem.offset[value_buf_[0]]);
  struct Job {
    const uint8_t* in;
    const int64_t* st;
    float* dst;
    int64_t c, h, w;
  };
  const Job job{in, strides, dst, is.c, is.h, is.w};
  const Job* j = &job;
  // One image row per task: NHWC destination, any source strides (NCHW or NHWC buffers).
  pool_.parallel_for(n * is.h, [j](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t img = r / j->h, y = r % j->h;
      const uint8_t* src = j->in + img * j->st[0] + y * j->st[2];
      float* d = j->dst + r * j->w * j->c;
      for (int64_t x = 0; x < j->w; ++x)
        for (int64_t ch = 0; ch < j->c; ++ch) d[x * j->c + ch] = static_cast<float>(src[x * j->st[3] + ch * j->st[1]]);
    }
  }, 4);
  run_graph(plan, arena, n, out);
}

void Executor::profile(const float* in, int64_t n, const int64_t strides[4], float* out,
                       int repeats, std::vector<double>& times, std::vector<double>& totals) {
  using clock = std::chrono::steady_clock;
  std::lock_guard<std::mutex> lock(run_mu_);
  const Plan& plan = plan_for(n);
  uint8_t* arena = arena_for(plan);
  const ValueShape& os = graph_.shape(graph_.output);
  const size_t steps = graph_.nodes.size() + 2;
  times.assign(static_cast<size_t>(repeats) * steps, 0.0);
  totals.assign(static_cast<size_t>(repeats), 0.0);
  auto secs = [](clock::time_point a, clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  };
  for (int r = 0; r < repeats; ++r) {
    double* t = times.data() + static_cast<size_t>(r) * steps;
    const auto start = clock::now();
    auto prev = start;
    run_input(in, n, strides, plan, arena);
    auto now = clock::now();
    t[0] = secs(prev, now);
    prev = now;
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
      if (fuse_.nodes[i].absorbed_by >= 0) continue;  // timed with the node computing it (0 here)
      run_node(static_cast<int>(i), plan, arena);
      now = clock::now();
      t[i + 1] = secs(prev, now);
      prev = now;
    }
    nhwc_to_nchw(reinterpret_cast<const float*>(arena + plan.mem.offset[value_buf_[graph_.output]]), n,
                 os.c, os.h, os.w, out, pool_);
    now = clock::now();
    t[steps - 1] = secs(prev, now);
    totals[static_cast<size_t>(r)] = secs(start, now);
  }
  release_large_arena(plan.mem.arena_bytes);
}

void Executor::run_input(const float* in, int64_t n, const int64_t strides[4], const Plan& plan,
                         uint8_t* arena) {
  const ValueShape& is = graph_.input;
  uint8_t* dst = arena + plan.mem.offset[value_buf_[0]];
  if (bits_.value_bits[0])
    nchw_pack(in, n, is.c, is.h, is.w, strides, bits_.input_target.sink(reinterpret_cast<word_t*>(dst)), pool_);
  else
    nchw_to_nhwc(in, n, is.c, is.h, is.w, strides, reinterpret_cast<float*>(dst), pool_);
}

RunArgs Executor::node_args(int i, const Plan& plan, uint8_t* arena, const uint8_t** in_ptrs,
                            PackSink* sinks) {
  const Node& nd = graph_.nodes[i];
  const NodeBitPlan& nb = bits_.nodes[i];
  const std::vector<size_t>& off = plan.mem.offset;
  for (size_t k = 0; k < nd.inputs.size(); ++k) in_ptrs[k] = arena + off[value_buf_[nd.inputs[k]]];
  // The op's kernel writes the full-size copies; run_node the subsampled ones.
  int n_sinks = 0;
  for (int s : nb.sides_out)
    if (bits_.sides[s].sub_h == 1 && bits_.sides[s].sub_w == 1)
      sinks[n_sinks++] = bits_.sides[s].target.sink(reinterpret_cast<word_t*>(arena + off[side_buf_[s]]));
  RunArgs a;
  a.n = plan.n;
  a.n_in = static_cast<int>(nd.inputs.size());
  a.in = in_ptrs;
  a.in_bits = io_[i].in_bits.get();
  a.in_shape = io_[i].in_shape.data();
  a.out = arena + off[value_buf_[i + 1]];
  a.out_shape = &nd.out;
  a.out_bits = bits_.value_bits[i + 1];
  a.out_thr = nb.out_thr;
  a.out_flip = nb.out_flip;
  a.out_pack = &nb.out_pack;
  a.or_mask = nb.or_mask.empty() ? nullptr : nb.or_mask.data();
  a.packed_in = nb.side_in >= 0 ? reinterpret_cast<const word_t*>(arena + off[side_buf_[nb.side_in]]) : nullptr;
  a.sinks = sinks;
  a.n_sinks = n_sinks;
  a.scratch = arena + plan.mem.scratch_offset;
  a.pool = &pool_;
  return a;
}

void Executor::run_node(int i, const Plan& plan, uint8_t* arena) {
  const NodeFusePlan& f = fuse_.nodes[i];
  if (f.absorbed_by >= 0) return;  // computed in that node's pass
  RunArgs a = node_args(i, plan, arena, in_ptrs_.data(), sink_buf_.data());
  if (f.add_node >= 0) {
    // The conv computes the add: it writes the add's value and packed copies.
    const RunArgs add = node_args(f.add_node, plan, arena, pool_in_ptrs_.data(), sink_buf_.data());
    bool relu = false;
    graph_.nodes[f.add_node].impl->residual_add(&relu);
    a.out = add.out;
    a.out_shape = add.out_shape;
    a.out_bits = false;
    a.sinks = add.sinks;
    a.n_sinks = add.n_sinks;
    a.residual = reinterpret_cast<const float*>(arena + plan.mem.offset[value_buf_[f.residual]]);
    a.residual_relu = relu;
    graph_.nodes[i].impl->run(a);
    write_subsampled_sides(f.add_node, plan, arena);
    return;
  }
  if (f.concat_node >= 0) {
    // The pool reads the concat's operands (its own input, the concat's value, is not stored).
    const RunArgs c = node_args(f.concat_node, plan, arena, pool_in_ptrs_.data(), pool_sink_buf_.data());
    a.n_in = c.n_in;
    a.in = c.in;
    a.in_bits = c.in_bits;
    a.in_shape = c.in_shape;
    a.concat_in = true;
  }
  RunArgs pa;
  if (f.pool_node >= 0) {
    pa = node_args(f.pool_node, plan, arena, pool_in_ptrs_.data(), pool_sink_buf_.data());
    a.row_pool = graph_.nodes[f.pool_node].impl.get();
    a.row_pool_args = &pa;
  }
  graph_.nodes[i].impl->run(a);
  write_subsampled_sides(f.pool_node >= 0 ? f.pool_node : i, plan, arena);
}

void Executor::write_subsampled_sides(int i, const Plan& plan, uint8_t* arena) {
  for (int s : bits_.nodes[i].sides_out) {
    const SidePlan& sp = bits_.sides[s];
    if (sp.sub_h == 1 && sp.sub_w == 1) continue;
    const ValueShape& vs = graph_.shape(sp.value);
    const float* x = reinterpret_cast<const float*>(arena + plan.mem.offset[value_buf_[sp.value]]);
    pack_pixels_strided(x, plan.n, vs.h, vs.w, vs.c, sp.sub_h, sp.sub_w, sp.target.thr.data(),
                        sp.target.flip.empty() ? nullptr : sp.target.flip.data(),
                        reinterpret_cast<word_t*>(arena + plan.mem.offset[side_buf_[s]]), pool_);
  }
}

}  // namespace hbn

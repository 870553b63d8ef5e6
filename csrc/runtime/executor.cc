#include "runtime/executor.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>

#include "bitpack/bitpack.h"
#include "runtime/ops.h"

namespace hbn {
namespace {

size_t align_up(size_t v) { return (v + kAlignment - 1) / kAlignment * kAlignment; }

std::vector<float> copy_f32(const TensorDesc* t) {
  if (!t) return {};
  std::vector<float> v(static_cast<size_t>(t->numel()));
  std::memcpy(v.data(), t->data, t->nbytes);  // file data need not be aligned in memory
  return v;
}

const float* ptr_or_null(const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); }

}  // namespace

struct Executor::Prepared {
  std::unique_ptr<Conv2dF32> f32;
  std::unique_ptr<WBConv2d> wb;
  std::unique_ptr<BConv2d> bc;
  std::vector<float> scale, bias, bn_scale, bn_shift;
  // Input binarization of a conv_fbin: thresholds (zeros = plain sign when the file has none)
  // and flips (empty = none).
  std::vector<float> thr;
  std::vector<uint8_t> flip;
  // max_pool in the bit domain: per bit, 1 where the consumer's comparison is "above" (OR).
  std::vector<word_t> or_mask;
  // max_pool from floats to bits: the consumer's comparison, applied to the pooled registers.
  PackTarget out_pack;
};

Executor::Executor(ModelBytes bytes, bool bit_passing) : bytes_(std::move(bytes)), pool_(1) {
  file_ = parse_model(bytes_.data, bytes_.size);
  graph_ = build_graph(file_);
  for (const auto& t : file_.tensors) param_bytes_ += t.nbytes;

  const int n_nodes = static_cast<int>(graph_.nodes.size());
  prepared_.resize(n_nodes);
  for (int i = 0; i < n_nodes; ++i) {
    const Node& nd = graph_.nodes[i];
    auto p = std::make_unique<Prepared>();
    if (nd.type == OpType::conv_f32) {
      p->f32 = std::make_unique<Conv2dF32>(nd.geom, copy_f32(nd.weight).data());
    } else if (nd.type == OpType::conv_wbin || nd.type == OpType::conv_fbin) {
      std::vector<word_t> w(static_cast<size_t>(nd.weight->numel()));
      std::memcpy(w.data(), nd.weight->data, nd.weight->nbytes);
      if (nd.type == OpType::conv_wbin) p->wb = std::make_unique<WBConv2d>(nd.geom, w.data());
      else p->bc = std::make_unique<BConv2d>(nd.geom, w.data());
    }
    if (nd.type == OpType::conv_f32 || nd.type == OpType::conv_wbin || nd.type == OpType::conv_fbin) {
      p->scale = copy_f32(nd.scale);
      p->bias = copy_f32(nd.bias);
    }
    p->bn_scale = copy_f32(nd.bn_scale);
    p->bn_shift = copy_f32(nd.bn_shift);
    if (nd.type == OpType::conv_fbin) {
      p->thr = nd.in_threshold ? copy_f32(nd.in_threshold)
                               : std::vector<float>(static_cast<size_t>(nd.geom.in_channels), 0.0f);
      if (nd.in_flip) p->flip.assign(nd.in_flip->data, nd.in_flip->data + nd.in_flip->nbytes);
    }
    prepared_[i] = std::move(p);
  }

  // Bit passing: a value whose only path forward is into a FullBinConv without the input scale
  // (which needs the float input) is held as that consumer's packed sign bits, thresholded by
  // its producer. Exact: a FullBinConv producer's transform computes the same float y and
  // applies the comparison pack_rows would; a max-pool between them runs on bits (max commutes
  // with the comparison, see max_pool_bits); a concat between them joins bit rows, which needs
  // every input but the last to end on a word boundary (channel offsets multiple of 64).
  value_bits_.assign(n_nodes + 1, false);
  bits_consumer_.assign(n_nodes, -1);
  bits_offset_.assign(n_nodes, 0);
  node_sides_.assign(n_nodes, {});
  conv_side_.assign(n_nodes, -1);
  if (!bit_passing) return;
  std::vector<int> consumers(n_nodes + 1, 0), last_consumer(n_nodes + 1, -1);
  for (int i = 0; i < n_nodes; ++i)
    for (int v : graph_.nodes[i].inputs) {
      ++consumers[v];
      last_consumer[v] = i;
    }
  // sink[v]: the binary consumer whose thresholds value v would carry, at channel sink_off[v].
  std::vector<int> sink(n_nodes + 1, -1);
  std::vector<int64_t> sink_off(n_nodes + 1, 0);
  for (int v = n_nodes; v >= 0; --v) {
    if (v == graph_.output || consumers[v] != 1) continue;
    const int j = last_consumer[v];
    const Node& c = graph_.nodes[j];
    if (c.type == OpType::conv_fbin && !c.input_scale && c.inputs[0] == v) {
      sink[v] = j;
    } else if (c.type == OpType::max_pool && sink[j + 1] >= 0) {
      sink[v] = sink[j + 1];
      sink_off[v] = sink_off[j + 1];
    } else if (c.type == OpType::concat && sink[j + 1] >= 0) {
      int64_t off = 0;
      bool aligned = true;
      for (int in : c.inputs) {
        if (in == v) break;
        off += graph_.shape(in).c;
      }
      for (size_t q = 0; q + 1 < c.inputs.size(); ++q)
        aligned = aligned && graph_.shape(c.inputs[q]).c % kWordBits == 0;
      if (aligned) {
        sink[v] = sink[j + 1];
        sink_off[v] = sink_off[j + 1] + off;
      }
    }
  }
  // A value is bits when it has a sink and its producer can write bits (the input always can:
  // nchw_pack); then drop values whose neighbours on the path stayed float, until consistent.
  value_bits_[0] = sink[0] >= 0;
  for (int i = 0; i < n_nodes; ++i) {
    const Node& nd = graph_.nodes[i];
    const int v = i + 1;
    if (sink[v] < 0) continue;
    if (nd.type == OpType::conv_fbin) value_bits_[v] = true;
    else if (nd.type == OpType::max_pool) value_bits_[v] = true;  // pools bits, or packs its floats
    else if (nd.type == OpType::concat)
      value_bits_[v] = std::all_of(nd.inputs.begin(), nd.inputs.end(), [&](int in) { return value_bits_[in] == true; });
  }
  for (bool changed = true; changed;) {
    changed = false;
    for (int v = 0; v <= n_nodes; ++v) {
      if (!value_bits_[v]) continue;
      const Node& c = graph_.nodes[last_consumer[v]];
      bool ok = c.type == OpType::conv_fbin || value_bits_[last_consumer[v] + 1];
      if (v > 0 && graph_.nodes[v - 1].type == OpType::concat)
        for (int in : graph_.nodes[v - 1].inputs) ok = ok && value_bits_[in];
      if (!ok) {
        value_bits_[v] = false;
        changed = true;
      }
    }
  }
  if (value_bits_[0]) {
    const Prepared& c = *prepared_[sink[0]];
    input_target_ = make_pack_target(c.thr.data() + sink_off[0],
                                     c.flip.empty() ? nullptr : c.flip.data() + sink_off[0], graph_.input.c);
  }
  for (int i = 0; i < n_nodes; ++i) {
    const int v = i + 1;
    if (!value_bits_[v]) continue;
    bits_consumer_[i] = sink[v];
    bits_offset_[i] = sink_off[v];
    if (graph_.nodes[i].type != OpType::max_pool) continue;
    const Prepared& c = *prepared_[sink[v]];
    if (!value_bits_[graph_.nodes[i].inputs[0]])
      prepared_[i]->out_pack = make_pack_target(c.thr.data() + sink_off[v],
                                                c.flip.empty() ? nullptr : c.flip.data() + sink_off[v],
                                                graph_.nodes[i].out.c);
    std::vector<word_t>& mask = prepared_[i]->or_mask;
    const int64_t ch_n = graph_.nodes[i].out.c;
    mask.assign(static_cast<size_t>(words_for(ch_n)), 0);
    for (int64_t ch = 0; ch < ch_n && !c.flip.empty(); ++ch)
      if (c.flip[static_cast<size_t>(sink_off[v] + ch)]) mask[ch / kWordBits] |= word_t{1} << (ch % kWordBits);
  }
  plan_sides();
}

void Executor::plan_sides() {
  // A float value read by FullBinConvs (packing it themselves) and by a float op, produced by an
  // op whose kernel can compare while it stores (add, max-pool of floats): the producer writes
  // one packed copy per distinct consumer rule, so the floats are not re-read per consumer.
  // Exact: the copy is pack_rows' rule applied to the very floats the producer stores.
  const int n_nodes = static_cast<int>(graph_.nodes.size());
  size_t most = 0;
  for (int j = 0; j < n_nodes; ++j) {
    const Node& c = graph_.nodes[j];
    if (c.type != OpType::conv_fbin || c.input_scale) continue;
    const int v = c.inputs[0];
    if (v == 0 || value_bits_[v]) continue;
    const int prod = v - 1;
    const Node& pn = graph_.nodes[prod];
    const bool can = pn.type == OpType::add ||
                     (pn.type == OpType::max_pool && !value_bits_[pn.inputs[0]]);
    if (!can) continue;
    const Prepared& pc = *prepared_[j];
    int found = -1;
    for (int k : node_sides_[prod]) {
      const Prepared& other = *prepared_[sides_[k].consumers[0]];
      if (other.thr == pc.thr && other.flip == pc.flip) found = k;
    }
    if (found < 0) {
      found = static_cast<int>(sides_.size());
      sides_.push_back({v, {}});
      side_targets_.push_back(make_pack_target(pc.thr.data(), pc.flip.empty() ? nullptr : pc.flip.data(),
                                               graph_.shape(v).c));
      node_sides_[prod].push_back(found);
      most = std::max(most, node_sides_[prod].size());
    }
    sides_[found].consumers.push_back(j);
    conv_side_[j] = found;
  }
  sink_buf_.resize(std::max<size_t>(most, 1));
}

Executor::~Executor() { std::free(arena_); }

void Executor::set_num_threads(int n) {
  std::lock_guard<std::mutex> lock(run_mu_);
  pool_.set_num_threads(std::max(1, n));
}

std::vector<int64_t> Executor::output_shape(int64_t n) const {
  const ValueShape& s = graph_.shape(graph_.output);
  if (s.flat) return {n, s.c};
  return {n, s.c, s.h, s.w};
}

size_t Executor::value_bytes(int value, int64_t n) const {
  const int values = static_cast<int>(graph_.nodes.size()) + 1;
  if (value >= values) {
    const ValueShape& s = graph_.shape(sides_[value - values].value);
    return align_up(static_cast<size_t>(n * s.h * s.w * words_for(s.c)) * sizeof(word_t) + kOverReadBytes);
  }
  const ValueShape& s = graph_.shape(value);
  const size_t raw = value_bits_[value]
                         ? static_cast<size_t>(n * s.h * s.w * words_for(s.c)) * sizeof(word_t)
                         : static_cast<size_t>(n * s.per_image()) * sizeof(float);
  return align_up(raw + kOverReadBytes);
}

size_t Executor::scratch_bytes_for(int i, int64_t n) const {
  const Node& nd = graph_.nodes[i];
  const ValueShape& in = graph_.shape(nd.inputs[0]);
  const int h = static_cast<int>(in.h), w = static_cast<int>(in.w), nn = static_cast<int>(n);
  const Prepared& p = *prepared_[i];
  switch (nd.type) {
    case OpType::conv_f32: return align_up(p.f32->workspace_bytes(nn, h, w));
    case OpType::conv_wbin: return align_up(p.wb->workspace_bytes(nn, h, w));
    case OpType::conv_fbin: {
      size_t b = align_up(p.bc->workspace_bytes(nn, h, w));
      if (!value_bits_[nd.inputs[0]] && conv_side_[i] < 0)
        b += align_up(static_cast<size_t>(n * in.h * in.w * words_for(in.c)) * sizeof(word_t) + kOverReadBytes);
      if (nd.input_scale)
        b += align_up(static_cast<size_t>(n * in.h * in.w) * sizeof(float) + kOverReadBytes) +
             align_up(static_cast<size_t>(n * nd.out.h * nd.out.w) * sizeof(float) + kOverReadBytes);
      return b;
    }
    default: return 0;
  }
}

const Executor::Plan& Executor::plan_for(int64_t n) {
  auto it = plans_.find(n);
  if (it != plans_.end()) return it->second;
  const int n_nodes = static_cast<int>(graph_.nodes.size());
  const int n_ids = n_nodes + 1 + static_cast<int>(sides_.size());
  std::vector<int> last_use(n_ids, -1);
  for (int i = 0; i < n_nodes; ++i)
    for (int v : graph_.nodes[i].inputs) last_use[v] = std::max(last_use[v], i);
  for (size_t k = 0; k < sides_.size(); ++k)
    for (int j : sides_[k].consumers) last_use[n_nodes + 1 + k] = std::max(last_use[n_nodes + 1 + k], j);
  last_use[graph_.output] = n_nodes;  // lives to the end (copied out after the last op)

  Plan plan;
  plan.n = n;
  plan.value_offset.assign(n_ids, 0);
  // First-fit allocation over the live blocks, in execution order.
  std::map<size_t, size_t> live;  // offset -> size
  std::vector<std::vector<int>> frees(n_nodes + 1);
  size_t top = 0;
  auto alloc = [&](size_t size) {
    size_t off = 0;
    for (const auto& [o, s] : live) {
      if (o >= off + size) break;
      off = std::max(off, o + s);
    }
    live[off] = size;
    top = std::max(top, off + size);
    return off;
  };
  plan.value_offset[0] = alloc(value_bytes(0, n));
  if (last_use[0] >= 0) frees[last_use[0]].push_back(0);
  else live.erase(plan.value_offset[0]);
  for (int i = 0; i < n_nodes; ++i) {
    const int v = i + 1;
    plan.value_offset[v] = alloc(value_bytes(v, n));
    if (last_use[v] < 0) frees[i].push_back(v);  // dead value: still written, freed at once
    else frees[last_use[v]].push_back(v);
    for (int k : node_sides_[i]) {
      const int id = n_nodes + 1 + k;
      plan.value_offset[id] = alloc(value_bytes(id, n));
      frees[last_use[id]].push_back(id);
    }
    for (int dead : frees[i]) live.erase(plan.value_offset[dead]);
    plan.scratch_bytes = std::max(plan.scratch_bytes, scratch_bytes_for(i, n));
  }
  plan.scratch_offset = align_up(top);
  plan.arena_bytes = plan.scratch_offset + plan.scratch_bytes + kAlignment;
  if (plan.arena_bytes > arena_capacity_) {
    void* mem = std::aligned_alloc(kAlignment, align_up(plan.arena_bytes));
    if (!mem) throw std::bad_alloc();
    std::free(arena_);
    arena_ = static_cast<uint8_t*>(mem);
    arena_capacity_ = align_up(plan.arena_bytes);
  }
  return plans_.emplace(n, std::move(plan)).first->second;
}

size_t Executor::planned_bytes(int64_t n) {
  std::lock_guard<std::mutex> lock(run_mu_);
  return plan_for(n).arena_bytes;
}

void Executor::run(const float* in, int64_t n, const int64_t strides[4], float* out) {
  std::lock_guard<std::mutex> lock(run_mu_);
  const Plan& plan = plan_for(n);
  uint8_t* arena = arena_;
  run_input(in, n, strides, plan, arena);
  for (size_t i = 0; i < graph_.nodes.size(); ++i) run_node(static_cast<int>(i), plan, arena);
  const ValueShape& os = graph_.shape(graph_.output);
  nhwc_to_nchw(reinterpret_cast<const float*>(arena + plan.value_offset[graph_.output]), n,
               os.c, os.h, os.w, out, pool_);
}

void Executor::profile(const float* in, int64_t n, const int64_t strides[4], float* out,
                       int repeats, std::vector<double>& times, std::vector<double>& totals) {
  using clock = std::chrono::steady_clock;
  std::lock_guard<std::mutex> lock(run_mu_);
  const Plan& plan = plan_for(n);
  uint8_t* arena = arena_;
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
      run_node(static_cast<int>(i), plan, arena);
      now = clock::now();
      t[i + 1] = secs(prev, now);
      prev = now;
    }
    nhwc_to_nchw(reinterpret_cast<const float*>(arena + plan.value_offset[graph_.output]), n,
                 os.c, os.h, os.w, out, pool_);
    now = clock::now();
    t[steps - 1] = secs(prev, now);
    totals[static_cast<size_t>(r)] = secs(start, now);
  }
}

void Executor::run_input(const float* in, int64_t n, const int64_t strides[4], const Plan& plan,
                         uint8_t* arena) {
  const ValueShape& is = graph_.input;
  uint8_t* dst = arena + plan.value_offset[0];
  if (value_bits_[0])
    nchw_pack(in, n, is.c, is.h, is.w, strides, input_target_.sink(reinterpret_cast<word_t*>(dst)), pool_);
  else
    nchw_to_nhwc(in, n, is.c, is.h, is.w, strides, reinterpret_cast<float*>(dst), pool_);
}

void Executor::run_node(int i, const Plan& plan, uint8_t* arena) {
  const Node& nd = graph_.nodes[i];
  Prepared& p = *prepared_[i];
  const int64_t n = plan.n;
  const int v_in = nd.inputs[0];
  const ValueShape& in = graph_.shape(v_in);
  const float* x = reinterpret_cast<const float*>(arena + plan.value_offset[v_in]);
  uint8_t* out_raw = arena + plan.value_offset[i + 1];
  float* y = reinterpret_cast<float*>(out_raw);
  uint8_t* scratch = arena + plan.scratch_offset;
  const int64_t rows = n * in.h * in.w;
  const int nn = static_cast<int>(n), h = static_cast<int>(in.h), w = static_cast<int>(in.w);
  const int values = static_cast<int>(graph_.nodes.size()) + 1;
  const int n_sides = static_cast<int>(node_sides_[i].size());
  for (int k = 0; k < n_sides; ++k) {
    const int s = node_sides_[i][k];
    sink_buf_[k] = side_targets_[s].sink(reinterpret_cast<word_t*>(arena + plan.value_offset[values + s]));
  }

  switch (nd.type) {
    case OpType::conv_f32:
    case OpType::conv_wbin:
    case OpType::conv_fbin: {
      OutputTransform t;
      t.scale = ptr_or_null(p.scale);
      t.bias = ptr_or_null(p.bias);
      t.act = nd.act;
      if (nd.type == OpType::conv_f32) {
        p.f32->run(x, nn, h, w, t, y, scratch, pool_);
        break;
      }
      if (nd.type == OpType::conv_wbin) {
        p.wb->run(x, nn, h, w, t, y, scratch, pool_);
        break;
      }
      uint8_t* cur = scratch + align_up(p.bc->workspace_bytes(nn, h, w));
      const word_t* bits;
      if (value_bits_[v_in]) {
        bits = reinterpret_cast<const word_t*>(x);
      } else if (conv_side_[i] >= 0) {
        bits = reinterpret_cast<const word_t*>(arena + plan.value_offset[values + conv_side_[i]]);
      } else {
        word_t* packed = reinterpret_cast<word_t*>(cur);
        cur += align_up(static_cast<size_t>(rows * words_for(in.c)) * sizeof(word_t) + kOverReadBytes);
        if (nd.input_scale) {
          // XNOR-Net's K: mean_c |bn(x)| box-filtered with the conv's own window, zero padding
          // counted (avg_pool2d count_include_pad=True).
          float* a = reinterpret_cast<float*>(cur);
          cur += align_up(static_cast<size_t>(rows) * sizeof(float) + kOverReadBytes);
          float* k = reinterpret_cast<float*>(cur);
          mean_abs_affine(x, rows, in.c, p.bn_scale.data(), p.bn_shift.data(), a, pool_);
          PoolParams pp{nd.geom.kernel_h, nd.geom.kernel_w, nd.geom.stride_h, nd.geom.stride_w,
                        nd.geom.pad_h, nd.geom.pad_w, nd.out.h, nd.out.w, true};
          avg_pool(a, n, in.h, in.w, 1, pp, k, pool_);
          t.pixel_scale = k;
        }
        pack_rows(x, rows, static_cast<int>(in.c), in.c, packed, p.thr.data(),
                  p.flip.empty() ? nullptr : p.flip.data(), &pool_);
        bits = packed;
      }
      if (value_bits_[i + 1]) {
        const Prepared& c = *prepared_[bits_consumer_[i]];
        t.out_threshold = c.thr.data() + bits_offset_[i];
        t.out_flip = c.flip.empty() ? nullptr : c.flip.data() + bits_offset_[i];
        p.bc->run_bits(bits, nn, h, w, t, reinterpret_cast<word_t*>(out_raw), scratch, pool_);
      } else {
        p.bc->run(bits, nn, h, w, t, y, scratch, pool_);
      }
      break;
    }
    case OpType::relu:
      relu(x, n * in.per_image(), y, pool_);
      break;
    case OpType::max_pool:
    case OpType::avg_pool: {
      PoolParams pp{nd.kh, nd.kw, nd.sh, nd.sw, nd.ph, nd.pw, nd.out.h, nd.out.w, nd.count_include_pad};
      if (value_bits_[i + 1] && !value_bits_[v_in]) {
        const PackSink s = p.out_pack.sink(reinterpret_cast<word_t*>(out_raw));
        max_pool_fused(x, n, in.h, in.w, in.c, pp, nullptr, &s, 1, pool_);
      } else if (n_sides > 0) {
        max_pool_fused(x, n, in.h, in.w, in.c, pp, y, sink_buf_.data(), n_sides, pool_);
      } else if (value_bits_[v_in])
        max_pool_bits(reinterpret_cast<const word_t*>(x), n, in.h, in.w, words_for(in.c), pp,
                      p.or_mask.data(), reinterpret_cast<word_t*>(out_raw), pool_);
      else if (nd.type == OpType::max_pool) max_pool(x, n, in.h, in.w, in.c, pp, y, pool_);
      else avg_pool(x, n, in.h, in.w, in.c, pp, y, pool_);
      break;
    }
    case OpType::adaptive_avg_pool:
      adaptive_avg_pool(x, n, in.h, in.w, in.c, nd.out_h, nd.out_w, y, pool_);
      break;
    case OpType::add: {
      const float* b = reinterpret_cast<const float*>(arena + plan.value_offset[nd.inputs[1]]);
      if (n_sides > 0)
        add_fused(x, b, rows, in.c, nd.act == Activation::relu, y, sink_buf_.data(), n_sides, pool_);
      else
        add(x, b, n * in.per_image(), nd.act == Activation::relu, y, pool_);
      break;
    }
    case OpType::concat: {
      if (value_bits_[i + 1]) {
        // inputs end on word boundaries (checked when bit passing was planned)
        const int64_t out_words = words_for(nd.out.c);
        int64_t off = 0;
        for (int v : nd.inputs) {
          const int64_t wds = words_for(graph_.shape(v).c);
          copy_words(reinterpret_cast<const word_t*>(arena + plan.value_offset[v]), rows, wds,
                     out_words, off, reinterpret_cast<word_t*>(out_raw), pool_);
          off += wds;
        }
        break;
      }
      int64_t off = 0;
      for (int v : nd.inputs) {
        const ValueShape& s = graph_.shape(v);
        copy_channels(reinterpret_cast<const float*>(arena + plan.value_offset[v]), rows, s.c,
                      nd.out.c, off, y, pool_);
        off += s.c;
      }
      break;
    }
    case OpType::flatten:
      flatten_chw(x, n, in.c, in.h, in.w, y, pool_);
      break;
    case OpType::softmax:
      softmax_rows(x, rows, in.c, y, pool_);
      break;
    case OpType::lrn:
      lrn(x, rows, in.c, nd.size, nd.alpha, nd.beta, nd.k, y, pool_);
      break;
    case OpType::batchnorm:
      channel_affine(x, rows, in.c, p.bn_scale.data(), p.bn_shift.data(),
                     nd.act == Activation::relu, y, pool_);
      break;
  }
}

}  // namespace hbn

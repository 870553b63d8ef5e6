// Pooling: max_pool (also in the bit domain and fused with packing for binary consumers),
// avg_pool and adaptive_avg_pool, with PyTorch's window and divisor rules (runtime/ops.h).
#include "runtime/graph.h"
#include "runtime/op.h"

namespace hbn {
namespace {

const std::vector<AttrSpec> kPoolAttrs = {
    {kKernelH, true, 1, kMaxPoolKernel}, {kKernelW, true, 1, kMaxPoolKernel},
    {kStrideH, true, 1, kMaxPoolKernel}, {kStrideW, true, 1, kMaxPoolKernel},
    {kPadH, true, 0, kMaxPoolKernel / 2}, {kPadW, true, 0, kMaxPoolKernel / 2},
    {kCeilMode, false, 0, 1, 0},
};

std::vector<AttrSpec> avg_attrs() {
  std::vector<AttrSpec> a = kPoolAttrs;
  a.push_back({kCountIncludePad, false, 0, 1, 1});
  return a;
}

class Pool : public OpImpl {
 public:
  Pool(BuildCtx& c, bool avg) : avg_(avg) {
    const int kh = static_cast<int>(c.attr(kKernelH)), kw = static_cast<int>(c.attr(kKernelW));
    const int sh = static_cast<int>(c.attr(kStrideH)), sw = static_cast<int>(c.attr(kStrideW));
    const int ph = static_cast<int>(c.attr(kPadH, 0, kh / 2)), pw = static_cast<int>(c.attr(kPadW, 0, kw / 2));
    const bool ceil_mode = c.attr(kCeilMode) != 0;
    const bool include_pad = avg ? c.attr(kCountIncludePad) != 0 : true;
    const ValueShape& in = c.in(0);
    if (in.h + 2 * ph < kh || in.w + 2 * pw < kw) c.fail("pooling window larger than the padded input");
    c.out = in;
    c.out.h = pool_out_size(in.h, kh, sh, ph, ceil_mode);
    c.out.w = pool_out_size(in.w, kw, sw, pw, ceil_mode);
    p_ = {kh, kw, sh, sw, ph, pw, c.out.h, c.out.w, include_pad};
  }

  OpWork work() const override {
    OpWork w;
    w.window_reads = sat_mul(sat_mul(static_cast<uint64_t>(out.h * out.w), static_cast<uint64_t>(out.c)),
                             static_cast<uint64_t>(p_.kh) * static_cast<uint64_t>(p_.kw));
    return w;
  }
  BitsOut bits_out() const override { return avg_ ? BitsOut::none : BitsOut::pool; }
  bool writes_packed_copies() const override { return !avg_; }
  const PoolParams* row_pool() const override { return avg_ ? nullptr : &p_; }
  bool pools_concat() const override { return !avg_; }
  // The rows of run() below for float input (the only input a fused conv gives it).
  void run_pool_rows(const RunArgs& a, int64_t r0, int64_t r1) const override {
    const ValueShape& s = in[0];
    if (a.out_bits) {
      const PackSink sink = a.out_pack->sink(reinterpret_cast<word_t*>(a.out));
      max_pool_fused_range(a.in_f(0), s.h, s.w, s.c, p_, nullptr, &sink, 1, r0, r1);
    } else {
      max_pool_fused_range(a.in_f(0), s.h, s.w, s.c, p_, a.out_f(), a.sinks, a.n_sinks, r0, r1);
    }
  }

  void run(const RunArgs& a) const override {
    const ValueShape& s = in[0];
    if (a.concat_in) {  // each operand pooled into its channel slice of the output
      int64_t off = 0;
      for (int k = 0; k < a.n_in; ++k) {
        const int64_t ck = a.in_shape[k]->c;
        max_pool_into(a.in_f(k), a.n, s.h, s.w, ck, p_, a.out_f() + off, out.c, *a.pool);
        off += ck;
      }
    } else if (a.out_bits && !a.in_bits[0]) {
      const PackSink sink = a.out_pack->sink(reinterpret_cast<word_t*>(a.out));
      max_pool_fused(a.in_f(0), a.n, s.h, s.w, s.c, p_, nullptr, &sink, 1, *a.pool);
    } else if (a.n_sinks > 0) {
      max_pool_fused(a.in_f(0), a.n, s.h, s.w, s.c, p_, a.out_f(), a.sinks, a.n_sinks, *a.pool);
    } else if (a.in_bits[0]) {
      max_pool_bits(reinterpret_cast<const word_t*>(a.in[0]), a.n, s.h, s.w, words_for(s.c), p_,
                    a.or_mask, reinterpret_cast<word_t*>(a.out), *a.pool);
    } else if (!avg_) {
      max_pool(a.in_f(0), a.n, s.h, s.w, s.c, p_, a.out_f(), *a.pool);
    } else {
      avg_pool(a.in_f(0), a.n, s.h, s.w, s.c, p_, a.out_f(), *a.pool);
    }
  }

 private:
  bool avg_;
  PoolParams p_{};
};

class AdaptiveAvgPool : public OpImpl {
 public:
  explicit AdaptiveAvgPool(BuildCtx& c) {
    const ValueShape& in = c.in(0);
    c.out = {in.c, c.attr(kOutH), c.attr(kOutW), in.flat};
  }
  OpWork work() const override {
    // Window of output row oy: [floor(oy*h/oh), ceil((oy+1)*h/oh)), likewise for columns.
    auto span = [](int64_t in, int64_t o) {
      uint64_t sum = 0;
      for (int64_t k = 0; k < o; ++k) sum += static_cast<uint64_t>((k + 1) * in / o + ((k + 1) * in % o != 0) - k * in / o);
      return sum;
    };
    OpWork w;
    w.window_reads = sat_mul(sat_mul(span(in[0].h, out.h), span(in[0].w, out.w)), static_cast<uint64_t>(out.c));
    return w;
  }
  void run(const RunArgs& a) const override {
    const ValueShape& s = in[0];
    adaptive_avg_pool(a.in_f(0), a.n, s.h, s.w, s.c, out.h, out.w, a.out_f(), *a.pool);
  }
};

std::unique_ptr<OpImpl> make_max(BuildCtx& c) { return std::make_unique<Pool>(c, false); }
std::unique_ptr<OpImpl> make_avg(BuildCtx& c) { return std::make_unique<Pool>(c, true); }
std::unique_ptr<OpImpl> make_adaptive(BuildCtx& c) { return std::make_unique<AdaptiveAvgPool>(c); }

}  // namespace

const OpDef& op_def_max_pool() {
  static const OpDef d{{OpType::max_pool, "max_pool", "max_pool", 1, 1, {}, kPoolAttrs,
                        "PyTorch MaxPool2d (dilation 1), pad <= kernel/2"},
                       make_max};
  return d;
}

const OpDef& op_def_avg_pool() {
  static const OpDef d{{OpType::avg_pool, "avg_pool", "avg_pool", 1, 1, {}, avg_attrs(),
                        "PyTorch AvgPool2d, pad <= kernel/2"},
                       make_avg};
  return d;
}

const OpDef& op_def_adaptive_avg_pool() {
  static const OpDef d{{OpType::adaptive_avg_pool, "adaptive_avg_pool", "adaptive_avg_pool", 1, 1, {},
                        {{kOutH, true, 1, kMaxSpatial}, {kOutW, true, 1, kMaxSpatial}},
                        "PyTorch AdaptiveAvgPool2d"},
                       make_adaptive};
  return d;
}

}  // namespace hbn

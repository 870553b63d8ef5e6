// Per-element and per-row float ops: relu, add (the residual add, which can also write packed
// copies of its output for binary consumers), batchnorm (a standalone per-channel affine),
// softmax and lrn over channels.
#include <cstring>

#include "runtime/op.h"

namespace hbn {
namespace {

class Relu : public OpImpl {
 public:
  explicit Relu(BuildCtx& c) { c.out = c.in(0); }
  void run(const RunArgs& a) const override {
    relu(a.in_f(0), a.n * in[0].per_image(), a.out_f(), *a.pool);
  }
};

class Add : public OpImpl {
 public:
  explicit Add(BuildCtx& c) {
    const ValueShape &x = c.in(0), &y = c.in(1);
    if (x.c != y.c || x.h != y.h || x.w != y.w) c.fail("input shapes differ");
    relu_ = c.attr(kAct) == 1;
    c.out = x;
  }
  bool writes_packed_copies() const override { return true; }
  bool residual_add(bool* relu) const override {
    *relu = relu_;
    return true;
  }
  void run(const RunArgs& a) const override {
    const ValueShape& s = in[0];
    if (a.n_sinks > 0)
      add_fused(a.in_f(0), a.in_f(1), a.n * s.h * s.w, s.c, relu_, a.out_f(), a.sinks, a.n_sinks, *a.pool);
    else
      add(a.in_f(0), a.in_f(1), a.n * s.per_image(), relu_, a.out_f(), *a.pool);
  }

 private:
  bool relu_ = false;
};

class BatchNorm : public OpImpl {
 public:
  explicit BatchNorm(BuildCtx& c) {
    const ValueShape& x = c.in(0);
    const TensorDesc* scale = c.tensor("scale", {x.c});
    const TensorDesc* shift = c.tensor("shift", {x.c});
    c.check_finite(scale, "scale", false);
    c.check_finite(shift, "shift", false);
    scale_.resize(static_cast<size_t>(x.c));
    shift_.resize(static_cast<size_t>(x.c));
    std::memcpy(scale_.data(), scale->data, scale->nbytes);
    std::memcpy(shift_.data(), shift->data, shift->nbytes);
    relu_ = c.attr(kAct) == 1;
    c.out = x;
  }
  void run(const RunArgs& a) const override {
    const ValueShape& s = in[0];
    channel_affine(a.in_f(0), a.n * s.h * s.w, s.c, scale_.data(), shift_.data(), relu_, a.out_f(), *a.pool);
  }

 private:
  std::vector<float> scale_, shift_;
  bool relu_ = false;
};

class Softmax : public OpImpl {
 public:
  explicit Softmax(BuildCtx& c) { c.out = c.in(0); }
  void run(const RunArgs& a) const override {
    const ValueShape& s = in[0];
    softmax_rows(a.in_f(0), a.n * s.h * s.w, s.c, a.out_f(), *a.pool);
  }
};

class Lrn : public OpImpl {
 public:
  explicit Lrn(BuildCtx& c) {
    size_ = static_cast<int>(c.attr(kSize));
    alpha_ = c.fattr(kAlpha);
    beta_ = c.fattr(kBeta);
    k_ = c.fattr(kK);
    c.out = c.in(0);
  }
  OpWork work() const override {
    OpWork w;
    w.window_reads = sat_mul(static_cast<uint64_t>(out.per_image()),
                             static_cast<uint64_t>(std::min<int64_t>(size_, out.c)));
    return w;
  }
  void run(const RunArgs& a) const override {
    const ValueShape& s = in[0];
    lrn(a.in_f(0), a.n * s.h * s.w, s.c, size_, alpha_, beta_, k_, a.out_f(), *a.pool);
  }

 private:
  int size_ = 1;
  double alpha_ = 0, beta_ = 0, k_ = 0;
};

template <typename T>
std::unique_ptr<OpImpl> make(BuildCtx& c) {
  return std::make_unique<T>(c);
}

}  // namespace

const OpDef& op_def_relu() {
  static const OpDef d{{OpType::relu, "relu", "relu", 1, 1, {}, {}, "`max(x, 0)`"}, make<Relu>};
  return d;
}

const OpDef& op_def_add() {
  static const OpDef d{{OpType::add, "add", "add", 2, 2, {}, {{kAct, false, 0, 1, 0}},
                        "elementwise sum (residual), optional ReLU"},
                       make<Add>};
  return d;
}

const OpDef& op_def_batchnorm() {
  static const OpDef d{{OpType::batchnorm, "batchnorm", "batchnorm", 1, 1,
                        {{"scale", DType::f32, true, "[C]"}, {"shift", DType::f32, true, "[C]"}},
                        {{kAct, false, 0, 1, 0}},
                        "`y = act(x * scale + shift)` (a BN not folded elsewhere)"},
                       make<BatchNorm>};
  return d;
}

const OpDef& op_def_softmax() {
  static const OpDef d{{OpType::softmax, "softmax", "softmax", 1, 1, {}, {}, "over channels (dim 1)"},
                       make<Softmax>};
  return d;
}

const OpDef& op_def_lrn() {
  static const OpDef d{{OpType::lrn, "lrn", "lrn", 1, 1, {},
                        {{kSize, true, 1, 1 << 16}, {kAlpha, true}, {kBeta, true}, {kK, true}},
                        "PyTorch LocalResponseNorm"},
                       make<Lrn>};
  return d;
}

}  // namespace hbn

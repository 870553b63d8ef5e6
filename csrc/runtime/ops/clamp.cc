// clamp: torch.clamp / Hardtanh / ReLU6 on any activation, y = min(max(x, min), max) with either
// bound optional (absent = unbounded), the bounds cast to float32 as torch casts a Python scalar
// for a float tensor. NaN propagates as in torch (both compares are false for it). Hardtanh is
// clamp(-1, 1); ReLU6 is clamp(0, 6). Scalar code the compiler vectorises: it is a cheap
// per-element op next to the convolutions around it.
#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/op.h"

namespace hbn {
namespace {

class Clamp : public OpImpl {
 public:
  explicit Clamp(BuildCtx& c) {
    has_lo_ = c.has_attr(kMin);
    has_hi_ = c.has_attr(kMax);
    if (!has_lo_ && !has_hi_) c.fail("neither min nor max is given");
    const double lo = has_lo_ ? c.fattr(kMin) : 0.0;
    const double hi = has_hi_ ? c.fattr(kMax) : 0.0;
    const double fmax = std::numeric_limits<float>::max();
    if ((has_lo_ && std::fabs(lo) > fmax) || (has_hi_ && std::fabs(hi) > fmax))
      c.fail("min / max beyond the float32 range");
    if (has_lo_ && has_hi_ && lo > hi) c.fail("min > max");
    lo_ = has_lo_ ? static_cast<float>(lo) : -std::numeric_limits<float>::infinity();
    hi_ = has_hi_ ? static_cast<float>(hi) : std::numeric_limits<float>::infinity();
    c.out = c.in(0);
  }

  void run(const RunArgs& a) const override {
    struct Job {
      const float* x;
      float* y;
      float lo, hi;
    };
    const Job job{a.in_f(0), a.out_f(), lo_, hi_};
    const Job* j = &job;  // one pointer: std::function stores it without allocating
    a.pool->parallel_for(a.n * in[0].per_image(), [j](int64_t b, int64_t e, int) {
      const float lo = j->lo, hi = j->hi;
      for (int64_t i = b; i < e; ++i) {
        const float v = j->x[i] < lo ? lo : j->x[i];  // NaN: both compares false, NaN stays
        j->y[i] = v > hi ? hi : v;
      }
    }, 16384);
  }

 private:
  bool has_lo_ = false, has_hi_ = false;
  float lo_ = 0.0f, hi_ = 0.0f;  // +-inf where a bound is absent (exact: inf never clamps)
};

std::unique_ptr<OpImpl> make(BuildCtx& c) { return std::make_unique<Clamp>(c); }

}  // namespace

const OpDef& op_def_clamp() {
  static const OpDef d{{OpType::clamp, "clamp", "clamp", 1, 1, {}, {{kMin, false}, {kMax, false}},
                        "torch.clamp: `min(max(x, min), max)`, either bound optional (Hardtanh, ReLU6)"},
                       make};
  return d;
}

}  // namespace hbn

// sign: a standalone sign producing +-1 floats, for float layers fed a binarized tensor (a
// float conv whose weights are not +-alpha, a residual add of the binarized value). The model's
// own sign(0) is kept: `zero` is the value at x == threshold (torch.sign: 0; where(x >= 0, 1,
// -1): +1; where(x > 0, 1, -1): -1). x - t compared with 0 in float32 is exactly x compared
// with t (finite floats, gradual underflow), so a sign(x - t) of the model is this op with
// threshold t. Scalar code the compiler vectorises.
#include <algorithm>

#include "runtime/op.h"

namespace hbn {
namespace {

class Sign : public OpImpl {
 public:
  explicit Sign(BuildCtx& c) {
    zero_ = static_cast<float>(c.attr(kZero));
    const double t = c.has_attr(kThreshold) ? c.fattr(kThreshold) : 0.0;
    thr_ = static_cast<float>(t);
    if (static_cast<double>(thr_) != t) c.fail("threshold is not a float32 value");
    c.out = c.in(0);
  }

  void run(const RunArgs& a) const override {
    struct Job {
      const float* x;
      float* y;
      float thr, zero;
    };
    const Job job{a.in_f(0), a.out_f(), thr_, zero_};
    const Job* j = &job;  // one pointer: std::function stores it without allocating
    a.pool->parallel_for(a.n * in[0].per_image(), [j](int64_t b, int64_t e, int) {
      const float t = j->thr, z = j->zero;
      for (int64_t i = b; i < e; ++i) {
        const float v = j->x[i];
        j->y[i] = v > t ? 1.0f : (v < t ? -1.0f : z);
      }
    }, 16384);
  }

 private:
  float thr_ = 0.0f, zero_ = 0.0f;
};

std::unique_ptr<OpImpl> make(BuildCtx& c) { return std::make_unique<Sign>(c); }

}  // namespace

const OpDef& op_def_sign() {
  static const OpDef d{{OpType::sign, "sign", "sign", 1, 1, {},
                        {{kZero, true, -1, 1}, {kThreshold, false}},
                        "standalone sign to +-1 floats: `x > threshold ? 1 : x < threshold ? -1 : zero` "
                        "(threshold 0 when absent)"},
                       make};
  return d;
}

}  // namespace hbn

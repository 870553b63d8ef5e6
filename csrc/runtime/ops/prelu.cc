// prelu: torch.nn.PReLU on NHWC rows, y = x > 0 ? x : slope * x with one slope per channel
// (num_parameters = C) or one for all channels (num_parameters = 1), the rule ATen uses.
// Scalar code: one compare and one multiply per element, which the compiler vectorises.
#include <algorithm>
#include <cstring>

#include "runtime/op.h"

namespace hbn {
namespace {

class PRelu : public OpImpl {
 public:
  explicit PRelu(BuildCtx& c) {
    const ValueShape& x = c.in(0);
    const TensorDesc* t = c.raw_tensor("slope");
    const bool scalar = t && t->dims == std::vector<int64_t>{1} && x.c != 1;
    t = c.tensor("slope", {scalar ? 1 : x.c});
    c.check_finite(t, "slope", false);
    slope_.resize(static_cast<size_t>(x.c));
    if (scalar) {
      float v;
      std::memcpy(&v, t->data, 4);
      std::fill(slope_.begin(), slope_.end(), v);
    } else {
      std::memcpy(slope_.data(), t->data, t->nbytes);
    }
    c.out = x;
  }

  void run(const RunArgs& a) const override {
    struct Job {
      const float* x;
      float* y;
      const float* slope;
      int64_t c;
    };
    const Job job{a.in_f(0), a.out_f(), slope_.data(), in[0].c};
    const Job* j = &job;  // one pointer: std::function stores it without allocating
    const int64_t rows = a.n * in[0].h * in[0].w;
    a.pool->parallel_for(rows, [j](int64_t b, int64_t e, int) {
      for (int64_t r = b; r < e; ++r) {
        const float* x = j->x + r * j->c;
        float* y = j->y + r * j->c;
        for (int64_t ch = 0; ch < j->c; ++ch) y[ch] = x[ch] > 0.0f ? x[ch] : j->slope[ch] * x[ch];
      }
    }, std::max<int64_t>(1, 16384 / in[0].c));
  }

 private:
  std::vector<float> slope_;  // per channel (a scalar slope repeated)
};

std::unique_ptr<OpImpl> make(BuildCtx& c) { return std::make_unique<PRelu>(c); }

}  // namespace

const OpDef& op_def_prelu() {
  static const OpDef d{{OpType::prelu, "prelu", "prelu", 1, 1,
                        {{"slope", DType::f32, true, "[C] or [1]"}}, {},
                        "PyTorch PReLU: `x > 0 ? x : slope[c] * x` (one slope for all channels when `[1]`)"},
                       make};
  return d;
}

}  // namespace hbn

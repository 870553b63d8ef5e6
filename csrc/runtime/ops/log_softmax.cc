// log_softmax over channels (dim 1; the last dim of a flat [N, C] value), computed the way
// torch does it to stay within float round-off of it: m = max_c x, s = sum_c exp(x - m),
// y = x - m - log(s). exp is evaluated in float32 like torch's kernel; the sum and the final
// subtraction in double, so the only differences from torch are its own float32 rounding
// (~1 ulp of the result). A value that overflowed to +-inf upstream gives the IEEE result
// (inf - inf = NaN), as in torch.
#include <algorithm>
#include <cmath>

#include "runtime/op.h"

namespace hbn {
namespace {

class LogSoftmax : public OpImpl {
 public:
  explicit LogSoftmax(BuildCtx& c) { c.out = c.in(0); }

  void run(const RunArgs& a) const override {
    struct Job {
      const float* x;
      float* y;
      int64_t c;
    };
    const Job job{a.in_f(0), a.out_f(), in[0].c};
    const Job* j = &job;  // one pointer: std::function stores it without allocating
    const int64_t rows = a.n * in[0].h * in[0].w;
    a.pool->parallel_for(rows, [j](int64_t b, int64_t e, int) {
      const int64_t c = j->c;
      for (int64_t r = b; r < e; ++r) {
        const float* x = j->x + r * c;
        float* y = j->y + r * c;
        float m = x[0];
        for (int64_t i = 1; i < c; ++i) m = std::max(m, x[i]);
        double sum = 0.0;
        for (int64_t i = 0; i < c; ++i) sum += std::exp(x[i] - m);
        const double lse = static_cast<double>(m) + std::log(sum);
        for (int64_t i = 0; i < c; ++i) y[i] = static_cast<float>(static_cast<double>(x[i]) - lse);
      }
    }, std::max<int64_t>(1, 16384 / in[0].c));
  }
};

std::unique_ptr<OpImpl> make(BuildCtx& c) { return std::make_unique<LogSoftmax>(c); }

}  // namespace

const OpDef& op_def_log_softmax() {
  static const OpDef d{{OpType::log_softmax, "log_softmax", "log_softmax", 1, 1, {}, {},
                        "over channels (dim 1): `x - max - log(sum(exp(x - max)))`"},
                       make};
  return d;
}

}  // namespace hbn

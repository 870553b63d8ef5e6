// input_norm: the model's image normalisation as its first op, `y = (x - mean[c]) / std[c]`
// (torchvision's Normalize: a subtraction then a division, in float32). A model exported with
// `input_norm=(mean, std)` takes images: uint8 pixels (Executor::run_u8, converted exactly to
// float at the input conversion) or the same pixel values as float32, so both paths are the
// same float arithmetic from here on. Normalising before the first conv (rather than folding
// 1/std and the mean into its weights and bias) keeps the conv's zero padding exact: a padded
// tap is 0 in the normalised domain, which is pixel value `mean`, not 0. Scalar code the
// compiler vectorises.
#include <cmath>
#include <cstring>

#include "runtime/op.h"

namespace hbn {
namespace {

class InputNorm : public OpImpl {
 public:
  explicit InputNorm(BuildCtx& c) {
    const ValueShape& x = c.in(0);
    if (x.flat) c.fail("input must be an image (4-D), not a flat value");
    const TensorDesc* mean = c.tensor("mean", {x.c});
    const TensorDesc* stdv = c.tensor("std", {x.c});
    c.check_finite(mean, "mean", false);
    c.check_finite(stdv, "std", false);
    mean_.resize(static_cast<size_t>(x.c));
    std_.resize(static_cast<size_t>(x.c));
    std::memcpy(mean_.data(), mean->data, mean->nbytes);
    std::memcpy(std_.data(), stdv->data, stdv->nbytes);
    for (float s : std_)
      if (!(s > 0.0f)) c.fail("std must be > 0 for every channel");
    c.out = x;
  }

  void run(const RunArgs& a) const override {
    struct Job {
      const float *x, *mean, *std;
      float* y;
      int64_t c;
    };
    const Job job{a.in_f(0), mean_.data(), std_.data(), a.out_f(), in[0].c};
    const Job* j = &job;
    a.pool->parallel_for(a.n * in[0].h * in[0].w, [j](int64_t b, int64_t e, int) {
      const int64_t c = j->c;
      for (int64_t p = b; p < e; ++p) {
        const float* x = j->x + p * c;
        float* y = j->y + p * c;
        for (int64_t k = 0; k < c; ++k) y[k] = (x[k] - j->mean[k]) / j->std[k];
      }
    }, 4096);
  }

 private:
  std::vector<float> mean_, std_;
};

std::unique_ptr<OpImpl> make(BuildCtx& c) { return std::make_unique<InputNorm>(c); }

}  // namespace

const OpDef& op_def_input_norm() {
  static const OpDef d{{OpType::input_norm, "input_norm", "input_norm", 1, 1,
                        {{"mean", DType::f32, true, "[C]"}, {"std", DType::f32, true, "[C]"}},
                        {},
                        "image normalisation `y = (x - mean) / std` per channel (x in pixel "
                        "units); a model whose input feeds it accepts uint8 images"},
                       make};
  return d;
}

}  // namespace hbn

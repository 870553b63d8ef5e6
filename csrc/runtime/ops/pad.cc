// pad: torch.nn.ConstantPad2d / ZeroPad2d / F.pad(mode="constant") over H and W of an NHWC
// activation, each side its own width, filled with one constant (0 when absent). A zero pad
// the exporter can prove exact folds into the following convolution instead (exporter.py).
#include <algorithm>
#include <cstring>

#include "runtime/op.h"

namespace hbn {
namespace {

class Pad : public OpImpl {
 public:
  explicit Pad(BuildCtx& c) {
    const ValueShape& x = c.in(0);
    if (x.flat) c.fail("input is a flat [N, C] value (padding needs H and W)");
    top_ = c.attr(kPadTop);
    bottom_ = c.attr(kPadBottom);
    left_ = c.attr(kPadLeft);
    right_ = c.attr(kPadRight);
    value_ = c.has_attr(kValue) ? static_cast<float>(c.fattr(kValue)) : 0.0f;
    c.out = x;
    c.out.h = x.h + top_ + bottom_;
    c.out.w = x.w + left_ + right_;
    if (c.out.h > kMaxSpatial || c.out.w > kMaxSpatial)
      c.fail("padded size " + std::to_string(c.out.h) + "x" + std::to_string(c.out.w) +
             " exceeds " + std::to_string(kMaxSpatial));
    if (c.out.per_image() > kMaxPerImage) c.fail("padded activation too large");
  }

  void run(const RunArgs& a) const override {
    struct Job {
      const float* x;
      float* y;
      const Pad* p;
    };
    const Job job{a.in_f(0), a.out_f(), this};
    const Job* j = &job;  // one pointer: std::function stores it without allocating
    const int64_t rows = a.n * out.h;  // one output row (W x C) per step
    a.pool->parallel_for(rows, [j](int64_t b, int64_t e, int) {
      const Pad& p = *j->p;
      const ValueShape &is = p.in[0], &os = p.out;
      const int64_t c = is.c, row = os.w * c;
      for (int64_t r = b; r < e; ++r) {
        const int64_t img = r / os.h, oh = r % os.h, ih = oh - p.top_;
        float* y = j->y + r * row;
        if (ih < 0 || ih >= is.h) {
          std::fill(y, y + row, p.value_);
          continue;
        }
        std::fill(y, y + p.left_ * c, p.value_);
        std::memcpy(y + p.left_ * c, j->x + (img * is.h + ih) * is.w * c,
                    static_cast<size_t>(is.w * c) * sizeof(float));
        std::fill(y + (p.left_ + is.w) * c, y + row, p.value_);
      }
    }, std::max<int64_t>(1, 16384 / (out.w * out.c)));
  }

 private:
  int64_t top_ = 0, bottom_ = 0, left_ = 0, right_ = 0;
  float value_ = 0.0f;
};

std::unique_ptr<OpImpl> make(BuildCtx& c) { return std::make_unique<Pad>(c); }

}  // namespace

const OpDef& op_def_pad() {
  static const OpDef d{{OpType::pad, "pad", "pad", 1, 1, {},
                        {{kPadTop, false, 0, kMaxSpatial, 0}, {kPadBottom, false, 0, kMaxSpatial, 0},
                         {kPadLeft, false, 0, kMaxSpatial, 0}, {kPadRight, false, 0, kMaxSpatial, 0},
                         {kValue, false}},
                        "constant padding of H / W (ConstantPad2d, F.pad): each side its own width, "
                        "filled with `value` (0 when absent)"},
                       make};
  return d;
}

}  // namespace hbn

// conv_grouped_f32: a float convolution with groups > 1 (torch.nn.Conv2d(groups=G): the
// original AlexNet's two groups, MobileNet / ReActNet-MobileNet depthwise convs). Two paths:
//  * depthwise (one input channel per group, any channel multiplier): a direct kernel over NHWC
//    rows, the channel loop innermost and contiguous so the compiler vectorises it; it is its
//    own scalar reference (one float accumulation per output, taps in (kh, kw) order);
//  * otherwise one Conv2dF32 per group (its SIMD micro-kernels and their tested reference):
//    the group's input channels gathered into a contiguous NHWC buffer, its output scattered
//    back at the group's channel offset.
// The output transform (scale, bias, ReLU) is the one every conv applies.
#include <algorithm>
#include <cstring>

#include "fconv/conv_f32.h"
#include "runtime/op.h"
#include "transform/output_transform.h"

namespace hbn {
namespace {

std::vector<float> copy_f32(const TensorDesc* t) {
  if (!t) return {};
  std::vector<float> v(static_cast<size_t>(t->numel()));
  std::memcpy(v.data(), t->data, t->nbytes);  // file data need not be aligned in memory
  return v;
}

class ConvGrouped : public OpImpl {
 public:
  explicit ConvGrouped(BuildCtx& c) {
    const ValueShape& x = c.in(0);
    if (x.flat) c.fail("input is a flat [N, C] value (a grouped conv needs H and W)");
    groups_ = c.attr(kGroups);
    g_.stride_h = static_cast<int>(c.attr(kStrideH));
    g_.stride_w = static_cast<int>(c.attr(kStrideW));
    g_.pad_h = static_cast<int>(c.attr(kPadH));
    g_.pad_w = static_cast<int>(c.attr(kPadW));
    act_ = static_cast<Activation>(c.attr(kAct));
    const TensorDesc* w = c.raw_tensor("weight");
    if (!w) c.fail("missing tensor weight");
    if (w->dims.size() != 4) c.fail("weight must be 4-D");
    if (w->dims[0] < 1 || w->dims[0] > kMaxChannels || w->dims[1] < 1 || w->dims[1] > kMaxChannels ||
        w->dims[2] < 1 || w->dims[2] > kMaxKernel || w->dims[3] < 1 || w->dims[3] > kMaxKernel)
      c.fail("weight dimensions out of range");
    const int64_t oc = w->dims[0], icg = w->dims[1];
    if (x.c % groups_ != 0)
      c.fail("input channels " + std::to_string(x.c) + " not divisible by groups " + std::to_string(groups_));
    if (oc % groups_ != 0)
      c.fail("output channels " + std::to_string(oc) + " not divisible by groups " + std::to_string(groups_));
    if (icg * groups_ != x.c)
      c.fail("weight has " + std::to_string(icg) + " input channels per group, the input " +
             std::to_string(x.c) + " / " + std::to_string(groups_));
    weight_ = c.tensor("weight", w->dims);
    c.check_finite(weight_, "weight", false);
    g_.in_channels = static_cast<int>(icg);
    g_.out_channels = static_cast<int>(oc / groups_);
    g_.kernel_h = static_cast<int>(w->dims[2]);
    g_.kernel_w = static_cast<int>(w->dims[3]);
    if (x.h + 2 * g_.pad_h < g_.kernel_h || x.w + 2 * g_.pad_w < g_.kernel_w)
      c.fail("kernel larger than the padded input");
    const TensorDesc* scale = c.tensor("scale", {oc});
    const TensorDesc* bias = c.tensor("bias", {oc});
    c.check_finite(scale, "scale", false);
    c.check_finite(bias, "bias", false);
    scale_ = copy_f32(scale);
    bias_ = copy_f32(bias);
    c.out = {oc, g_.out_h(static_cast<int>(x.h)), g_.out_w(static_cast<int>(x.w)), false};
  }

  void prepare() override {
    const std::vector<float> w = copy_f32(weight_);
    const int64_t k = int64_t(g_.kernel_h) * g_.kernel_w;
    const int64_t oc = out.c;
    if (depthwise()) {  // [OC][1][KH][KW] -> [KH*KW][OC]: the channel loop reads contiguously
      dw_.resize(static_cast<size_t>(k * oc));
      for (int64_t o = 0; o < oc; ++o)
        for (int64_t t = 0; t < k; ++t) dw_[static_cast<size_t>(t * oc + o)] = w[static_cast<size_t>(o * k + t)];
      return;
    }
    const int64_t per_group = int64_t(g_.out_channels) * g_.in_channels * k;
    for (int64_t gi = 0; gi < groups_; ++gi)
      convs_.push_back(std::make_unique<Conv2dF32>(g_, w.data() + gi * per_group));
  }

  OpWork work() const override {
    OpWork w;
    const uint64_t taps = sat_mul(sat_mul(static_cast<uint64_t>(g_.in_channels), g_.kernel_h), g_.kernel_w);
    w.macs = sat_mul(sat_mul(static_cast<uint64_t>(out.h * out.w), static_cast<uint64_t>(out.c)), taps);
    return w;
  }

  size_t scratch_bytes(int64_t n, bool, bool) const override {
    if (depthwise()) return 0;
    const int64_t gin = n * in[0].h * in[0].w * g_.in_channels;
    const int64_t gout = n * out.h * out.w * g_.out_channels;
    return align_up(static_cast<size_t>(gin) * 4) + align_up(static_cast<size_t>(gout) * 4) +
           align_up(convs_[0]->workspace_bytes(static_cast<int>(n), static_cast<int>(in[0].h),
                                               static_cast<int>(in[0].w)));
  }

  void run(const RunArgs& a) const override {
    if (depthwise()) return run_depthwise(a);
    const ValueShape &is = in[0], &os = out;
    const int64_t px_in = a.n * is.h * is.w, px_out = a.n * os.h * os.w;
    const int64_t icg = g_.in_channels, ocg = g_.out_channels;
    float* gin = reinterpret_cast<float*>(a.scratch);
    float* gout = reinterpret_cast<float*>(a.scratch + align_up(static_cast<size_t>(px_in * icg) * 4));
    uint8_t* ws = a.scratch + align_up(static_cast<size_t>(px_in * icg) * 4) +
                  align_up(static_cast<size_t>(px_out * ocg) * 4);
    const float* x = a.in_f(0);
    float* y = a.out_f();
    for (int64_t gi = 0; gi < groups_; ++gi) {
      for (int64_t p = 0; p < px_in; ++p)
        std::memcpy(gin + p * icg, x + p * is.c + gi * icg, static_cast<size_t>(icg) * 4);
      OutputTransform t;
      t.scale = scale_.empty() ? nullptr : scale_.data() + gi * ocg;
      t.bias = bias_.empty() ? nullptr : bias_.data() + gi * ocg;
      t.act = act_;
      convs_[static_cast<size_t>(gi)]->run(gin, static_cast<int>(a.n), static_cast<int>(is.h),
                                           static_cast<int>(is.w), t, gout, ws, *a.pool);
      for (int64_t p = 0; p < px_out; ++p)
        std::memcpy(y + p * os.c + gi * ocg, gout + p * ocg, static_cast<size_t>(ocg) * 4);
    }
  }

 private:
  bool depthwise() const { return g_.in_channels == 1; }

  void run_depthwise(const RunArgs& a) const {
    struct Job {
      const float* x;
      float* y;
      const ConvGrouped* op;
    };
    const Job job{a.in_f(0), a.out_f(), this};
    const Job* j = &job;  // one pointer: std::function stores it without allocating
    a.pool->parallel_for(a.n * out.h, [j](int64_t b, int64_t e, int) {
      const ConvGrouped& op = *j->op;
      const ValueShape &is = op.in[0], &os = op.out;
      const ConvGeometry& g = op.g_;
      const int64_t oc = os.c, ic = is.c, mult = oc / ic;
      OutputTransform t;
      t.scale = op.scale_.empty() ? nullptr : op.scale_.data();
      t.bias = op.bias_.empty() ? nullptr : op.bias_.data();
      t.act = op.act_;
      for (int64_t r = b; r < e; ++r) {
        const int64_t img = r / os.h, oh = r % os.h;
        for (int64_t ow = 0; ow < os.w; ++ow) {
          float* acc = j->y + (r * os.w + ow) * oc;
          std::fill(acc, acc + oc, 0.0f);
          for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
            const int64_t ih = oh * g.stride_h - g.pad_h + kh;
            if (ih < 0 || ih >= is.h) continue;
            for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
              const int64_t iw = ow * g.stride_w - g.pad_w + kw;
              if (iw < 0 || iw >= is.w) continue;
              const float* xp = j->x + ((img * is.h + ih) * is.w + iw) * ic;
              const float* wp = op.dw_.data() + (kh * g.kernel_w + kw) * oc;
              if (mult == 1) {
                for (int64_t c = 0; c < oc; ++c) acc[c] += xp[c] * wp[c];
              } else {
                for (int64_t c = 0; c < oc; ++c) acc[c] += xp[c / mult] * wp[c];
              }
            }
          }
          const int64_t m = r * os.w + ow;
          for (int64_t c = 0; c < oc; ++c) acc[c] = apply_transform(t, acc[c], m, c);
        }
      }
    }, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, out.w * out.c * g_.kernel_h * g_.kernel_w)));
  }

  int64_t groups_ = 1;
  ConvGeometry g_;  // per group: in_channels / out_channels of one group
  Activation act_ = Activation::none;
  const TensorDesc* weight_ = nullptr;  // into the model bytes; repacked by prepare()
  std::vector<float> scale_, bias_;
  std::vector<float> dw_;  // depthwise weights [KH*KW][OC]
  std::vector<std::unique_ptr<Conv2dF32>> convs_;
};

std::unique_ptr<OpImpl> make(BuildCtx& c) { return std::make_unique<ConvGrouped>(c); }

}  // namespace

const OpDef& op_def_conv_grouped_f32() {
  static const OpDef d{{OpType::conv_grouped_f32, "conv_grouped_f32", "fprec", 1, 1,
                        {{"weight", DType::f32, true, "[OC,IC/groups,KH,KW]"},
                         {"scale", DType::f32, false, "[OC]"},
                         {"bias", DType::f32, false, "[OC]"}},
                        {{kStrideH, true, 1, kMaxKernel}, {kStrideW, true, 1, kMaxKernel},
                         {kPadH, true, 0, kMaxKernel}, {kPadW, true, 0, kMaxKernel},
                         {kAct, false, 0, 1, 0}, {kGroups, true, 1, kMaxChannels}},
                        "FPrec conv with `groups` (PyTorch Conv2d groups, depthwise when IC/groups = 1), "
                        "zero padding; `y = act(acc * scale + bias)`"},
                       make};
  return d;
}

}  // namespace hbn

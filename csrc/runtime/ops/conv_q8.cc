// conv_q8: the 8-bit convolution (also Linear layers: a 1x1 conv on a flat value). The input is
// the engine's float NHWC value, quantized per tensor with the attributes in_scale / in_zero
// (uint8, asymmetric); weights int8 per output channel (w_scale); int32 accumulation; the float
// output stage (or bits for a binary consumer) is the shared OutputTransform with
// scale = in_scale * w_scale * BN scale. The kernels are qconv/ (QConv2d over qgemm rows). A
// max-pool after it can run per band of its finished output rows (fuse_plan.h, "Row pool").
#include <cmath>
#include <cstring>
#include <limits>

#include "qconv/qconv.h"
#include "qconv/qgemm.h"
#include "runtime/model_bytes.h"
#include "runtime/op.h"
#include "runtime/row_pool_band.h"
#include "transform/output_transform.h"

namespace hbn {
namespace {

std::vector<float> copy_f32(const TensorDesc* t) {
  if (!t) return {};
  std::vector<float> v(static_cast<size_t>(t->numel()));
  std::memcpy(v.data(), t->data, t->nbytes);
  return v;
}

const std::vector<AttrSpec> kQ8Attrs = {
    {kStrideH, true, 1, kMaxKernel}, {kStrideW, true, 1, kMaxKernel},
    {kPadH, true, 0, kMaxKernel},    {kPadW, true, 0, kMaxKernel},
    {kAct, false, 0, 1, 0},          {kLinear, false, 0, 1, 0},
    {kInScale, true},                {kInZero, false, 0, 255, 0},
};

class ConvQ8 : public OpImpl {
 public:
  explicit ConvQ8(BuildCtx& c) {
    g_.stride_h = static_cast<int>(c.attr(kStrideH));
    g_.stride_w = static_cast<int>(c.attr(kStrideW));
    g_.pad_h = static_cast<int>(c.attr(kPadH));
    g_.pad_w = static_cast<int>(c.attr(kPadW));
    act_ = static_cast<Activation>(c.attr(kAct));
    c.attr(kLinear);  // display only, but range-checked
    const double in_scale = c.fattr(kInScale);
    // Used as a float by the quantizer: it must stay a positive finite float.
    if (!(in_scale > 0) || !(static_cast<float>(in_scale) > 0) ||
        !std::isfinite(static_cast<float>(in_scale)))
      c.fail("in_scale must be a positive finite float32 value");
    in_scale_ = in_scale;
    in_zero_ = static_cast<int>(c.attr(kInZero));

    const TensorDesc* w = c.raw_tensor("weight");
    if (!w) c.fail("missing tensor weight");
    if (w->dims.size() != 4) c.fail("weight must be 4-D");
    if (w->dims[0] > kMaxChannels || w->dims[1] > kMaxChannels || w->dims[2] > kMaxKernel ||
        w->dims[3] > kMaxKernel)
      c.fail("weight dimensions out of range");
    g_.out_channels = static_cast<int>(w->dims[0]);
    g_.in_channels = static_cast<int>(w->dims[1]);
    g_.kernel_h = static_cast<int>(w->dims[2]);
    g_.kernel_w = static_cast<int>(w->dims[3]);
    weight_ = c.tensor("weight", w->dims);
    const int8_t* wv = reinterpret_cast<const int8_t*>(weight_->data);
    for (int64_t i = 0; i < weight_->numel(); ++i)
      if (wv[i] == -128) c.fail("weight values must be in -127..127 (-128 found)");
    release_file_pages(weight_->data, static_cast<size_t>(weight_->nbytes));
    const int64_t k = int64_t(g_.in_channels) * g_.kernel_h * g_.kernel_w;
    if ((k + 3) / 4 * 4 > qgemm::kQMaxK)
      c.fail("receptive field of " + std::to_string(k) + " values exceeds " +
             std::to_string(qgemm::kQMaxK) + " (int32 accumulation would not be exact)");

    const ValueShape& in = c.in(0);
    if (g_.in_channels != in.c)
      c.fail("expects " + std::to_string(g_.in_channels) + " input channels, input has " +
             std::to_string(in.c));
    if (in.h + 2 * g_.pad_h < g_.kernel_h || in.w + 2 * g_.pad_w < g_.kernel_w)
      c.fail("kernel larger than the padded input");
    if (in.flat && (g_.kernel_h != 1 || g_.kernel_w != 1 || g_.pad_h || g_.pad_w))
      c.fail("a flat (flattened) input only takes a 1x1 unpadded kernel");
    const int64_t oc = g_.out_channels;
    const TensorDesc* w_scale = c.tensor("w_scale", {oc});
    const TensorDesc* scale = c.tensor("scale", {oc});
    const TensorDesc* bias = c.tensor("bias", {oc});
    c.check_finite(w_scale, "w_scale", false);
    c.check_finite(scale, "scale", false);
    c.check_finite(bias, "bias", false);
    const std::vector<float> ws = copy_f32(w_scale), bn = copy_f32(scale);
    out_scale_.resize(static_cast<size_t>(oc));
    for (size_t j = 0; j < out_scale_.size(); ++j) {
      const double s = in_scale * double(ws[j]) * (bn.empty() ? 1.0 : double(bn[j]));
      out_scale_[j] = static_cast<float>(s);
      if (!std::isfinite(out_scale_[j]))
        c.fail("in_scale * w_scale * scale overflows float32 at channel " + std::to_string(j));
    }
    bias_ = copy_f32(bias);
    c.out = {oc, g_.out_h(static_cast<int>(in.h)), g_.out_w(static_cast<int>(in.w)), in.flat};
  }

  void prepare() override {
    conv_ = std::make_unique<QConv2d>(g_, reinterpret_cast<const int8_t*>(weight_->data),
                                      static_cast<float>(in_scale_), in_zero_);
    release_file_pages(weight_->data, static_cast<size_t>(weight_->nbytes));
  }

  OpWork work() const override {
    OpWork w;
    const uint64_t taps = sat_mul(sat_mul(static_cast<uint64_t>(g_.in_channels), g_.kernel_h), g_.kernel_w);
    w.macs = sat_mul(sat_mul(static_cast<uint64_t>(out.h * out.w), g_.out_channels), taps);
    return w;
  }

  size_t scratch_bytes(int64_t n, bool, bool) const override {
    // + one flag per pooled row for a fused max-pool (row_pool_band.h)
    return align_up(conv_->workspace_bytes(static_cast<int>(n), ih(), iw())) +
           align_up(RowPoolBands::flag_bytes(n, out.h));
  }

  bool takes_row_pool() const override { return true; }

  BitsOut bits_out() const override { return BitsOut::kernel; }

  void run(const RunArgs& a) const override {
    OutputTransform t;
    t.scale = out_scale_.data();
    t.bias = bias_.empty() ? nullptr : bias_.data();
    t.act = act_;
    const int n = static_cast<int>(a.n);
    if (a.out_bits) {
      t.out_threshold = a.out_thr;
      t.out_flip = a.out_flip;
      conv_->run_bits(a.in_f(0), n, ih(), iw(), t, reinterpret_cast<word_t*>(a.out), a.scratch, *a.pool);
    } else if (!a.row_pool) {
      conv_->run(a.in_f(0), n, ih(), iw(), t, a.out_f(), a.scratch, *a.pool);
    } else {
      // Fused max-pool: pooled rows whose window lies in a band of final conv pixels run right
      // after the band, the rest after the conv.
      const RowPoolBands rp{a.row_pool, a.row_pool_args, a.row_pool->row_pool(), out.h, out.w,
                            a.scratch + align_up(conv_->workspace_bytes(n, ih(), iw()))};
      rp.clear(a.n);
      const RowPoolBands* r = &rp;  // one-pointer captures: no std::function allocates
      const QConv2d::RowsDone done = [r](int64_t m0, int64_t m1) { r->band(m0, m1); };
      conv_->run(a.in_f(0), n, ih(), iw(), t, a.out_f(), a.scratch, *a.pool, &done);
      a.pool->parallel_for(a.n * rp.p->out_h, [r](int64_t b, int64_t e, int) { r->rest(b, e); });
    }
  }

 private:
  int ih() const { return static_cast<int>(in[0].h); }
  int iw() const { return static_cast<int>(in[0].w); }

  ConvGeometry g_;
  Activation act_ = Activation::none;
  double in_scale_ = 1.0;
  int in_zero_ = 0;
  const TensorDesc* weight_ = nullptr;  // into the model bytes; packed by prepare()
  std::vector<float> out_scale_, bias_;
  std::unique_ptr<QConv2d> conv_;
};

std::unique_ptr<OpImpl> make(BuildCtx& c) { return std::make_unique<ConvQ8>(c); }

}  // namespace

const OpDef& op_def_conv_q8() {
  static const OpDef d{
      {OpType::conv_q8, "conv_q8", "int8", 1, 1,
       {{"weight", DType::i8, true, "[OC,IC,KH,KW]"},
        {"w_scale", DType::f32, true, "[OC]"},
        {"scale", DType::f32, false, "[OC]"},
        {"bias", DType::f32, false, "[OC]"}},
       kQ8Attrs,
       "8-bit conv: `q = clamp(nearbyint(x / in_scale) + in_zero, 0, 255)` (half to even, NaN -> 0; "
       "padding is `in_zero`), weights int8 -127..127, `acc = sum (q - in_zero) * w` (int32, exact; "
       "IC*KH*KW <= 65536), `y = act(acc * f32(in_scale * w_scale * scale) + bias)`"},
      make};
  return d;
}

}  // namespace hbn

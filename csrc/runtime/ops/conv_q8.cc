// conv_q8: the 8-bit convolution (also Linear layers: a 1x1 conv on a flat value). The input is
// the engine's float NHWC value, quantized per tensor with the attributes in_scale / in_zero
// (uint8, asymmetric); weights int8 per output channel (w_scale); int32 accumulation; the float
// output stage (or bits for a binary consumer) is the shared OutputTransform with
// scale = in_scale * w_scale * BN scale. The kernels are qconv/ (QConv2d over qgemm rows). A
// max-pool after it can run per band of its finished output rows (fuse_plan.h, "Row pool").
#include "runtime/model_bytes.h"
#include "runtime/ops/conv_q8_base.h"

namespace hbn {
namespace {

const std::vector<AttrSpec> kQ8Attrs = {
    {kStrideH, true, 1, kMaxKernel}, {kStrideW, true, 1, kMaxKernel},
    {kPadH, true, 0, kMaxKernel},    {kPadW, true, 0, kMaxKernel},
    {kAct, false, 0, 1, 0},          {kLinear, false, 0, 1, 0},
    {kInScale, true},                {kInZero, false, 0, 255, 0},
};

class ConvQ8 : public QConvOpBase {
 public:
  explicit ConvQ8(BuildCtx& c) {
    read_quant_attrs(c);

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
    check_input_and_shape(c);
    const int64_t oc = g_.out_channels;
    const TensorDesc* w_scale = c.tensor("w_scale", {oc});
    const TensorDesc* scale = c.tensor("scale", {oc});
    const TensorDesc* bias = c.tensor("bias", {oc});
    c.check_finite(w_scale, "w_scale", false);
    c.check_finite(scale, "scale", false);
    c.check_finite(bias, "bias", false);
    const std::vector<float> ws = copy_floats(w_scale), bn = copy_floats(scale);
    out_scale_.resize(static_cast<size_t>(oc));
    for (size_t j = 0; j < out_scale_.size(); ++j) {
      const double s = in_scale_ * double(ws[j]) * (bn.empty() ? 1.0 : double(bn[j]));
      out_scale_[j] = static_cast<float>(s);
      if (!std::isfinite(out_scale_[j]))
        c.fail("in_scale * w_scale * scale overflows float32 at channel " + std::to_string(j));
    }
    bias_ = copy_floats(bias);
  }

  void prepare() override {
    conv_ = std::make_unique<QConv2d>(g_, reinterpret_cast<const int8_t*>(weight_->data),
                                      static_cast<float>(in_scale_), in_zero_);
    release_file_pages(weight_->data, static_cast<size_t>(weight_->nbytes));
  }
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

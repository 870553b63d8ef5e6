// conv_wbin_q8: a WeightBin conv / linear layer (weights sign(W) x alpha per output channel)
// run on the 8-bit GEMM. Its float NHWC input is quantized per tensor to uint8 (in_scale /
// in_zero, as conv_q8); its weights are the layer's exact binary weights: the file stores the
// signs as bits (canonical [OC,KH,KW,words(IC)], as conv_wbin v1) and `scale` = alpha x BN scale,
// and the load expands the bits into int8 +-1 for QConv2d's panels (qconv/qconv_binw.h). So
// acc = sum (q - in_zero) * (+-1) is exact in int32 and only the input is quantized:
// y = act(acc * f32(in_scale * scale) + bias). Float or packed-bit output like conv_q8.
#include "qconv/qconv_binw.h"
#include "runtime/model_bytes.h"
#include "runtime/ops/conv_q8_base.h"

namespace hbn {
namespace {

// The bits as words (the model bytes need not be aligned for uint64 in a borrowed buffer).
std::vector<word_t> copy_words(const TensorDesc* t) {
  std::vector<word_t> v(static_cast<size_t>(t->nbytes) / sizeof(word_t));
  std::memcpy(v.data(), t->data, v.size() * sizeof(word_t));
  return v;
}

const std::vector<AttrSpec> kWbinQ8Attrs = {
    {kStrideH, true, 1, kMaxKernel},          {kStrideW, true, 1, kMaxKernel},
    {kPadH, true, 0, kMaxKernel},             {kPadW, true, 0, kMaxKernel},
    {kAct, false, 0, 1, 0},                   {kLinear, false, 0, 1, 0},
    {kInChannels, true, 1, kMaxChannels},     {kInScale, true},
    {kInZero, false, 0, 255, 0},
};

class ConvWBinQ8 : public QConvOpBase {
 public:
  explicit ConvWBinQ8(BuildCtx& c) {
    read_quant_attrs(c);
    g_.in_channels = static_cast<int>(c.attr(kInChannels));

    const TensorDesc* w = c.raw_tensor("weight");
    if (!w) c.fail("missing tensor weight");
    if (w->dims.size() != 4) c.fail("weight must be 4-D [OC, KH, KW, words(in_channels)]");
    if (w->dims[0] > kMaxChannels || w->dims[1] > kMaxKernel || w->dims[2] > kMaxKernel)
      c.fail("weight dimensions out of range");
    g_.out_channels = static_cast<int>(w->dims[0]);
    g_.kernel_h = static_cast<int>(w->dims[1]);
    g_.kernel_w = static_cast<int>(w->dims[2]);
    weight_ = c.tensor("weight", {g_.out_channels, g_.kernel_h, g_.kernel_w, words_for(g_.in_channels)});
    if (!g_.valid()) c.fail("invalid geometry");
    if (!sign_bits_tail_clear(copy_words(weight_).data(), g_))
      c.fail("weight: bits past in_channels (" + std::to_string(g_.in_channels) +
             ") in a word must be 0");
    release_file_pages(weight_->data, static_cast<size_t>(weight_->nbytes));
    check_input_and_shape(c);
    const int64_t oc = g_.out_channels;
    const TensorDesc* scale = c.tensor("scale", {oc});
    const TensorDesc* bias = c.tensor("bias", {oc});
    c.check_finite(scale, "scale", false);
    c.check_finite(bias, "bias", false);
    const std::vector<float> s = copy_floats(scale);
    out_scale_.resize(static_cast<size_t>(oc));
    for (size_t j = 0; j < out_scale_.size(); ++j) {
      out_scale_[j] = static_cast<float>(in_scale_ * double(s[j]));
      if (!std::isfinite(out_scale_[j]))
        c.fail("in_scale * scale overflows float32 at channel " + std::to_string(j));
    }
    bias_ = copy_floats(bias);
  }

  void prepare() override {
    const std::vector<int8_t> w = sign_bits_to_i8(copy_words(weight_).data(), g_);
    release_file_pages(weight_->data, static_cast<size_t>(weight_->nbytes));
    conv_ = std::make_unique<QConv2d>(g_, w.data(), static_cast<float>(in_scale_), in_zero_);
  }
};

std::unique_ptr<OpImpl> make(BuildCtx& c) { return std::make_unique<ConvWBinQ8>(c); }

}  // namespace

const OpDef& op_def_conv_wbin_q8() {
  static const OpDef d{
      {OpType::conv_wbin_q8, "conv_wbin_q8", "wbin_int8", 1, 1,
       {{"weight", DType::bits, true, "[OC,KH,KW,words(IC)]"},
        {"scale", DType::f32, true, "[OC]"},
        {"bias", DType::f32, false, "[OC]"}},
       kWbinQ8Attrs,
       "WeightBin conv on 8-bit input: `q` as conv_q8 (uint8 per tensor, padding `in_zero`), "
       "weights +-1 from the sign bits (bit 1 = -1), `acc = sum (q - in_zero) * (+-1)` (int32, exact; "
       "IC*KH*KW <= 65536), `y = act(acc * f32(in_scale * scale) + bias)` (scale = alpha x BN scale)"},
      make};
  return d;
}

}  // namespace hbn

// conv_wbin_q8: a WeightBin conv / linear layer (weights sign(W) x alpha per output channel)
// run on the 8-bit GEMM. Its float NHWC input is quantized per tensor to uint8 (in_scale /
// in_zero, as conv_q8); its weights are the layer's exact binary weights: the file stores the
// signs as bits (canonical [OC,KH,KW,words(IC)], as conv_wbin v1) and `scale` = alpha x BN scale,
// and the load expands the bits into int8 +-1 for QConv2d's panels (qconv/qconv_binw.h). So
// acc = sum (q - in_zero) * (+-1) is exact in int32 and only the input is quantized:
// y = act(acc * f32(in_scale * scale) + bias). Float or packed-bit output like conv_q8.
#include <cmath>
#include <cstring>

#include "qconv/qconv.h"
#include "qconv/qconv_binw.h"
#include "qconv/qgemm.h"
#include "runtime/model_bytes.h"
#include "runtime/op.h"
#include "transform/output_transform.h"

namespace hbn {
namespace {

std::vector<float> copy_f32(const TensorDesc* t) {
  if (!t) return {};
  std::vector<float> v(static_cast<size_t>(t->numel()));
  std::memcpy(v.data(), t->data, t->nbytes);
  return v;
}

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

class ConvWBinQ8 : public OpImpl {
 public:
  explicit ConvWBinQ8(BuildCtx& c) {
    g_.stride_h = static_cast<int>(c.attr(kStrideH));
    g_.stride_w = static_cast<int>(c.attr(kStrideW));
    g_.pad_h = static_cast<int>(c.attr(kPadH));
    g_.pad_w = static_cast<int>(c.attr(kPadW));
    act_ = static_cast<Activation>(c.attr(kAct));
    c.attr(kLinear);  // display only, but range-checked
    const double in_scale = c.fattr(kInScale);
    if (!(in_scale > 0) || !(static_cast<float>(in_scale) > 0) ||
        !std::isfinite(static_cast<float>(in_scale)))
      c.fail("in_scale must be a positive finite float32 value");
    in_scale_ = in_scale;
    in_zero_ = static_cast<int>(c.attr(kInZero));
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
    const int64_t k = int64_t(g_.in_channels) * g_.kernel_h * g_.kernel_w;
    if ((k + 3) / 4 * 4 > qgemm::kQMaxK)
      c.fail("receptive field of " + std::to_string(k) + " values exceeds " +
             std::to_string(qgemm::kQMaxK) + " (int32 accumulation would not be exact)");
    if (!g_.valid()) c.fail("invalid geometry");
    if (!sign_bits_tail_clear(copy_words(weight_).data(), g_))
      c.fail("weight: bits past in_channels (" + std::to_string(g_.in_channels) +
             ") in a word must be 0");
    release_file_pages(weight_->data, static_cast<size_t>(weight_->nbytes));

    const ValueShape& in = c.in(0);
    if (g_.in_channels != in.c)
      c.fail("expects " + std::to_string(g_.in_channels) + " input channels, input has " +
             std::to_string(in.c));
    if (in.h + 2 * g_.pad_h < g_.kernel_h || in.w + 2 * g_.pad_w < g_.kernel_w)
      c.fail("kernel larger than the padded input");
    if (in.flat && (g_.kernel_h != 1 || g_.kernel_w != 1 || g_.pad_h || g_.pad_w))
      c.fail("a flat (flattened) input only takes a 1x1 unpadded kernel");
    const int64_t oc = g_.out_channels;
    const TensorDesc* scale = c.tensor("scale", {oc});
    const TensorDesc* bias = c.tensor("bias", {oc});
    c.check_finite(scale, "scale", false);
    c.check_finite(bias, "bias", false);
    const std::vector<float> s = copy_f32(scale);
    out_scale_.resize(static_cast<size_t>(oc));
    for (size_t j = 0; j < out_scale_.size(); ++j) {
      out_scale_[j] = static_cast<float>(in_scale * double(s[j]));
      if (!std::isfinite(out_scale_[j]))
        c.fail("in_scale * scale overflows float32 at channel " + std::to_string(j));
    }
    bias_ = copy_f32(bias);
    c.out = {oc, g_.out_h(static_cast<int>(in.h)), g_.out_w(static_cast<int>(in.w)), in.flat};
  }

  void prepare() override {
    const std::vector<int8_t> w = sign_bits_to_i8(copy_words(weight_).data(), g_);
    release_file_pages(weight_->data, static_cast<size_t>(weight_->nbytes));
    conv_ = std::make_unique<QConv2d>(g_, w.data(), static_cast<float>(in_scale_), in_zero_);
  }

  OpWork work() const override {
    OpWork w;
    const uint64_t taps = sat_mul(sat_mul(static_cast<uint64_t>(g_.in_channels), g_.kernel_h), g_.kernel_w);
    w.macs = sat_mul(sat_mul(static_cast<uint64_t>(out.h * out.w), g_.out_channels), taps);
    return w;
  }

  size_t scratch_bytes(int64_t n, bool, bool) const override {
    return align_up(conv_->workspace_bytes(static_cast<int>(n), ih(), iw()));
  }

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
    } else {
      conv_->run(a.in_f(0), n, ih(), iw(), t, a.out_f(), a.scratch, *a.pool);
    }
  }

 private:
  int ih() const { return static_cast<int>(in[0].h); }
  int iw() const { return static_cast<int>(in[0].w); }

  ConvGeometry g_;
  Activation act_ = Activation::none;
  double in_scale_ = 1.0;
  int in_zero_ = 0;
  const TensorDesc* weight_ = nullptr;  // sign bits in the model bytes; expanded by prepare()
  std::vector<float> out_scale_, bias_;
  std::unique_ptr<QConv2d> conv_;
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

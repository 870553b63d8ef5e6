// What the two 8-bit conv units (conv_q8.cc, conv_wbin_q8.cc) share: they differ only in where
// their int8 weights come from (int8 values in the file, or sign bits expanded at load) and how
// the per-channel output scale is formed. Attribute parsing, input checks, the work estimate,
// scratch and run() - float, packed bits, or float with a fused max-pool on finished row bands
// (fuse_plan.h, "Row pool") - are one implementation here.
#pragma once

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "qconv/qconv.h"
#include "qconv/qgemm.h"
#include "runtime/op.h"
#include "runtime/row_pool_band.h"
#include "transform/output_transform.h"

namespace hbn {

inline std::vector<float> copy_floats(const TensorDesc* t) {
  if (!t) return {};
  std::vector<float> v(static_cast<size_t>(t->numel()));
  std::memcpy(v.data(), t->data, t->nbytes);
  return v;
}

class QConvOpBase : public OpImpl {
 protected:
  // Stride, padding, activation, the display-only linear flag and the input quantizer.
  void read_quant_attrs(BuildCtx& c) {
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
  }

  // With g_'s channels and kernel known: the int32-exactness bound, the input's shape, and the
  // output shape (c.out).
  void check_input_and_shape(BuildCtx& c) {
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
    c.out = {g_.out_channels, g_.out_h(static_cast<int>(in.h)), g_.out_w(static_cast<int>(in.w)),
             in.flat};
  }

 public:
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

 protected:
  int ih() const { return static_cast<int>(in[0].h); }
  int iw() const { return static_cast<int>(in[0].w); }

  ConvGeometry g_;
  Activation act_ = Activation::none;
  double in_scale_ = 1.0;
  int in_zero_ = 0;
  const TensorDesc* weight_ = nullptr;  // into the model bytes; turned into panels by prepare()
  std::vector<float> out_scale_, bias_;  // out_scale_ includes in_scale
  std::unique_ptr<QConv2d> conv_;
};

}  // namespace hbn

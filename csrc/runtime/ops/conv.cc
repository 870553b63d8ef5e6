// The three convolutions (also Linear layers: a 1x1 conv on a flat value): conv_f32 (FPrec),
// conv_wbin (WeightBin: float input, +-1 weights) and conv_fbin (FullBin: sign-binarized input
// and weights, optional XNOR-Net input scale). Weights in the canonical layout are read from the
// model bytes at load and repacked once by the conv classes, which release the file pages they
// have read as they go (release_file_pages: a no-op unless the bytes are a mapped file), so a
// model's resident memory holds the repacked weights, not both copies. Weights a version-2 file
// stores in the layout the kernel path reads (hbn/weight_layout.h) are used in place: the kernel
// object points into the model bytes (shared file pages), nothing is copied; so do that conv's
// scale, bias, thresholds and BN vectors (version 1, or weights repacked: copied, O(channels)).
// The output transform applies scale, bias and activation.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>

#include "bconv/bconv.h"
#include "hbn/weight_layout.h"
#include "bitpack/bitpack.h"
#include "fconv/aligned.h"
#include "fconv/conv_f32.h"
#include "wbconv/lut.h"
#include "wbconv/wbconv.h"
#include "runtime/graph.h"
#include "runtime/model_bytes.h"
#include "runtime/op.h"
#include "runtime/row_pool_band.h"
#include "transform/output_transform.h"

namespace hbn {
namespace {

// A small parameter vector (scale, bias, BN): read in place in the model bytes when BuildCtx
// allows it (format version 2, whose contract already has run() read the file until the model
// is freed: docs/embedding.md; aligned for T), so a loaded model keeps no heap copy of it and
// its pages are the page cache's; else a copy (a version-1 file is never read after load, and a
// borrowed buffer may be misaligned).
template <typename T>
class TensorView {
 public:
  TensorView() = default;
  TensorView(const BuildCtx& c, const TensorDesc* t) {
    if (!t) return;
    if (c.vector_in_place(t, alignof(T))) {
      ptr_ = reinterpret_cast<const T*>(t->data);
      in_place_ = static_cast<size_t>(t->nbytes);
      return;
    }
    copy_.resize(t->nbytes / sizeof(T));
    std::memcpy(copy_.data(), t->data, copy_.size() * sizeof(T));
    ptr_ = copy_.data();
  }
  const T* data() const { return ptr_; }  // null for an absent tensor
  // Copies the values out of the model bytes: for an op whose weights are repacked rather than
  // read in place, so that none of its pages stay mapped for a few floats.
  void own() {
    if (!in_place_) return;
    copy_.assign(ptr_, ptr_ + in_place_ / sizeof(T));
    ptr_ = copy_.data();
    in_place_ = 0;
  }
  // The model bytes run() reads, if in place.
  void file_range(std::vector<std::pair<const uint8_t*, size_t>>& out) const {
    if (in_place_) out.push_back({reinterpret_cast<const uint8_t*>(ptr_), in_place_});
  }

 private:
  const T* ptr_ = nullptr;
  size_t in_place_ = 0;  // bytes, when ptr_ points into the model bytes
  std::vector<T> copy_;  // its buffer survives moves, so ptr_ stays valid
};

// Weights read once, at load, by a kernel's packing: in place in the model bytes where aligned
// (the kernel releases the mapped pages as it packs), else a temporary copy. Never kept.
template <class T>
class LoadView {
 public:
  explicit LoadView(const TensorDesc* t) {
    if (reinterpret_cast<uintptr_t>(t->data) % alignof(T) == 0) {
      ptr_ = reinterpret_cast<const T*>(t->data);
    } else {
      copy_.resize(t->nbytes / sizeof(T));
      std::memcpy(copy_.data(), t->data, copy_.size() * sizeof(T));
      ptr_ = copy_.data();
    }
  }
  const T* data() const { return ptr_; }

 private:
  const T* ptr_ = nullptr;
  std::vector<T> copy_;
};

std::vector<float> copy_f32(const TensorDesc* t) {
  if (!t) return {};
  std::vector<float> v(static_cast<size_t>(t->numel()));
  std::memcpy(v.data(), t->data, t->nbytes);  // file data need not be aligned in memory
  return v;
}

const std::vector<AttrSpec> kConvAttrs = {
    {kStrideH, true, 1, kMaxKernel}, {kStrideW, true, 1, kMaxKernel},
    {kPadH, true, 0, kMaxKernel},    {kPadW, true, 0, kMaxKernel},
    {kAct, false, 0, 1, 0},          {kLinear, false, 0, 1, 0},
};

std::vector<AttrSpec> binary_attrs(bool fbin) {
  std::vector<AttrSpec> a = kConvAttrs;
  a.push_back({kInChannels, true, 1, kMaxChannels});
  if (fbin) {
    a.push_back({kInputScale, false, 0, 1, 0});
    a.push_back({kInputDomain, false, 0, 1, 0});
  }
  return a;
}

// What every convolution shares: geometry, transform parameters, validation of both.
class ConvBase : public OpImpl {
 protected:
  ConvBase(BuildCtx& c, bool float_weights) {
    g_.stride_h = static_cast<int>(c.attr(kStrideH));
    g_.stride_w = static_cast<int>(c.attr(kStrideW));
    g_.pad_h = static_cast<int>(c.attr(kPadH));
    g_.pad_w = static_cast<int>(c.attr(kPadW));
    act_ = static_cast<Activation>(c.attr(kAct));
    c.attr(kLinear);  // display only, but range-checked
    const TensorDesc* w = c.raw_tensor("weight");
    if (!w) c.fail("missing tensor weight");
    if (w->dims.size() != 4) c.fail("weight must be 4-D");
    if (w->dims[0] > kMaxChannels || w->dims[1] > kMaxChannels || w->dims[2] > kMaxKernel ||
        w->dims[3] > kMaxKernel * 64)
      c.fail("weight dimensions out of range");
    g_.out_channels = static_cast<int>(w->dims[0]);
    if (float_weights) {
      g_.in_channels = static_cast<int>(w->dims[1]);
      g_.kernel_h = static_cast<int>(w->dims[2]);
      g_.kernel_w = static_cast<int>(w->dims[3]);
      weight_ = c.laid_out_tensor("weight", w->dims);
      if (weight_->layout == static_cast<uint32_t>(WeightLayout::f32_panel32)) {
        check_layout_size(c, Conv2dF32::packed_bytes(g_));
        if (!g_.valid()) c.fail("invalid geometry");
      } else if (weight_->layout) {
        c.fail(std::string("tensor weight: kernel layout ") + weight_layout_name(weight_->layout) +
               " is not a conv_f32 layout");
      }
      c.check_finite(weight_, "weight", false);
      // Validation read every page; prepare() reads them again one layer at a time, so the
      // load's peak does not hold all of them at once. (Weights run in place stay.)
      if (!weight_->layout) release_file_pages(weight_->data, static_cast<size_t>(weight_->nbytes));
    } else {
      g_.in_channels = static_cast<int>(c.attr(kInChannels));
      g_.kernel_h = static_cast<int>(w->dims[1]);
      g_.kernel_w = static_cast<int>(w->dims[2]);
      if (g_.kernel_w > kMaxKernel) c.fail("kernel too large");
      weight_ = c.laid_out_tensor("weight", {g_.out_channels, g_.kernel_h, g_.kernel_w, words_for(g_.in_channels)});
    }
    const ValueShape& in = c.in(0);
    if (g_.in_channels != in.c)
      c.fail("expects " + std::to_string(g_.in_channels) + " input channels, input has " +
             std::to_string(in.c));
    if (in.h + 2 * g_.pad_h < g_.kernel_h || in.w + 2 * g_.pad_w < g_.kernel_w)
      c.fail("kernel larger than the padded input");
    const int64_t oc = g_.out_channels;
    const TensorDesc* scale = c.tensor("scale", {oc});
    const TensorDesc* bias = c.tensor("bias", {oc});
    c.check_finite(scale, "scale", false);
    c.check_finite(bias, "bias", false);
    scale_ = TensorView<float>(c, scale);
    bias_ = TensorView<float>(c, bias);
    c.out = {oc, g_.out_h(static_cast<int>(in.h)), g_.out_w(static_cast<int>(in.w)), in.flat};
    if (in.flat && (g_.kernel_h != 1 || g_.kernel_w != 1 || g_.pad_h || g_.pad_w))
      c.fail("a flat (flattened) input only takes a 1x1 unpadded kernel");
  }

  OpWork work() const override {
    OpWork w;
    const uint64_t taps = sat_mul(sat_mul(static_cast<uint64_t>(g_.in_channels), g_.kernel_h), g_.kernel_w);
    w.macs = sat_mul(sat_mul(static_cast<uint64_t>(out.h * out.w), g_.out_channels), taps);
    return w;
  }

  OutputTransform transform() const {
    OutputTransform t;
    t.scale = scale_.data();
    t.bias = bias_.data();
    t.act = act_;
    return t;
  }
  // With a fused residual add (fuse_plan.h), if the executor gave one.
  OutputTransform transform(const RunArgs& a) const {
    OutputTransform t = transform();
    if (a.residual) {
      t.residual = a.residual;
      t.residual_ld = out.c;
      t.residual_act = a.residual_relu ? Activation::relu : Activation::none;
    }
    return t;
  }
  // A fused add's packed copies of output rows [m0, m1), by pack_rows' rule (the add's own).
  void pack_sinks(const RunArgs& a, int64_t m0, int64_t m1, ThreadPool* pool) const {
    const int64_t c = out.c, words = words_for(c);
    for (int k = 0; k < a.n_sinks; ++k) {
      const PackSink& s = a.sinks[k];
      pack_rows(a.out_f() + m0 * c, m1 - m0, static_cast<int>(c), c, s.out + m0 * words, s.thr, s.flip, pool);
    }
  }
  // The float convs: the residual in their SGEMM store, the packed copies after the run.
  bool takes_residual() const override { return true; }
  template <class Conv>
  void run_float(const Conv& conv, const RunArgs& a) const {
    conv.run(a.in_f(0), static_cast<int>(a.n), ih(), iw(), transform(a), a.out_f(), a.scratch, *a.pool);
    if (a.n_sinks > 0) pack_sinks(a, 0, a.n * out.h * out.w, a.pool);
  }
  int ih() const { return static_cast<int>(in[0].h); }
  int iw() const { return static_cast<int>(in[0].w); }
  int oh() const { return static_cast<int>(out.h); }
  int ow() const { return static_cast<int>(out.w); }

  // A kernel-layout weight: its size for this geometry must be `want` bytes.
  void check_layout_size(BuildCtx& c, size_t want) const {
    if (weight_->nbytes != want)
      c.fail(std::string("tensor weight: kernel layout ") + weight_layout_name(weight_->layout) + " takes " +
             std::to_string(want) + " bytes for this geometry, the file has " + std::to_string(weight_->nbytes));
  }
  // The laid-out weight bytes aligned for T: in the model bytes (a mapped file's tensors are
  // 64-byte aligned), or a copy kept for the model's life when a borrowed buffer is misaligned.
  template <class T>
  const T* laid_out_data() {
    if (reinterpret_cast<uintptr_t>(weight_->data) % alignof(word_t) == 0) {
      in_place_ = {weight_->data, static_cast<size_t>(weight_->nbytes)};
      return reinterpret_cast<const T*>(weight_->data);
    }
    copy_.resize(static_cast<size_t>(weight_->nbytes) / sizeof(word_t));
    std::memcpy(copy_.data(), weight_->data, static_cast<size_t>(weight_->nbytes));
    return reinterpret_cast<const T*>(copy_.data());
  }
  std::pair<const uint8_t*, size_t> in_place_bytes() const override { return in_place_; }
  // Weights repacked (not read in place): the vectors are copied too (TensorView::own).
  void own_vectors() {
    in_place_ = {nullptr, 0};
    scale_.own();
    bias_.own();
  }
  void file_ranges(std::vector<std::pair<const uint8_t*, size_t>>& out) const override {
    OpImpl::file_ranges(out);
    scale_.file_range(out);
    bias_.file_range(out);
  }

  ConvGeometry g_;
  Activation act_ = Activation::none;
  const TensorDesc* weight_ = nullptr;  // into the model bytes; repacked by prepare() unless laid out
  std::pair<const uint8_t*, size_t> in_place_{nullptr, 0};  // weight bytes run() reads in place
  AlignedVector<word_t> copy_;  // a misaligned laid-out weight's copy
  TensorView<float> scale_, bias_;
};

class ConvF32 : public ConvBase {
 public:
  explicit ConvF32(BuildCtx& c) : ConvBase(c, true) {}
  // The kernels repack from the model bytes directly; a copy only when they are misaligned.
  void prepare() override {
    if (weight_->layout) {
      conv_ = std::make_unique<Conv2dF32>(Conv2dF32::view(g_, laid_out_data<float>()));
      return;
    }
    conv_ = std::make_unique<Conv2dF32>(g_, LoadView<float>(weight_).data(), release_file_pages);
    own_vectors();
  }
  size_t scratch_bytes(int64_t n, bool, bool) const override {
    // + one flag per output row for a fused max-pool (pooled rows already done)
    return align_up(conv_->workspace_bytes(static_cast<int>(n), ih(), iw())) +
           align_up(RowPoolBands::flag_bytes(n, out.h));
  }
  bool takes_row_pool() const override { return true; }
  void run(const RunArgs& a) const override {
    const int nn = static_cast<int>(a.n);
    if (!a.row_pool) return run_float(*conv_, a);
    // Fused max-pool: pooled rows whose whole window lies in a finished band of conv rows run
    // right after the band, while it is in cache; the rest (windows across bands) after.
    const RowPoolBands rp{a.row_pool, a.row_pool_args, a.row_pool->row_pool(), out.h, out.w,
                          a.scratch + align_up(conv_->workspace_bytes(nn, ih(), iw()))};
    rp.clear(a.n);
    const RowPoolBands* r = &rp;  // one-pointer captures: no std::function allocates
    const std::function<void(int64_t, int64_t)> done = [r](int64_t m0, int64_t m1) { r->band(m0, m1); };
    conv_->run(a.in_f(0), nn, ih(), iw(), transform(), a.out_f(), a.scratch, *a.pool, &done);
    a.pool->parallel_for(a.n * rp.p->out_h, [r](int64_t b, int64_t e, int) { r->rest(b, e); });
  }

 private:
  std::unique_ptr<Conv2dF32> conv_;
};

// The LUT panel layout wbin_lut128g4 names (the AVX-512 row's; mr is not part of a layout).
const sgemm_detail::LutLayout kLut128G4{128, 0, 4};

size_t round64(size_t b) { return (b + 63) / 64 * 64; }

class ConvWBin : public ConvBase {
 public:
  explicit ConvWBin(BuildCtx& c) : ConvBase(c, false) {
    const size_t K = static_cast<size_t>(g_.kernel_h) * g_.kernel_w * g_.in_channels, N = g_.out_channels;
    switch (static_cast<WeightLayout>(weight_->layout)) {
      case WeightLayout::canonical: break;
      case WeightLayout::wbin_bits32: check_layout_size(c, round64((N + 31) / 32 * K * 4)); break;
      case WeightLayout::wbin_lut128g4:
        check_layout_size(c, round64((N + 127) / 128 * ((K + 31) / 32) * 128 * 4));
        break;
      default:
        c.fail(std::string("tensor weight: kernel layout ") + weight_layout_name(weight_->layout) +
               " is not a conv_wbin layout");
    }
  }
  void prepare() override {
    const auto layout = static_cast<WeightLayout>(weight_->layout);
    if (layout == WeightLayout::canonical) {
      conv_ = std::make_unique<WBConv2d>(g_, LoadView<word_t>(weight_).data(), release_file_pages);
      own_vectors();
      return;
    }
    const uint32_t* w = laid_out_data<uint32_t>();
    conv_ = std::make_unique<WBConv2d>(
        WBConv2d::view(g_, w, layout == WeightLayout::wbin_lut128g4 ? &kLut128G4 : nullptr, release_file_pages));
    // Repacked for another kernel path: the file's form stays mapped (a later change of path
    // may repack from it) but is not resident.
    if (!conv_->in_place()) own_vectors();
  }
  size_t scratch_bytes(int64_t n, bool, bool) const override {
    return align_up(conv_->workspace_bytes(static_cast<int>(n), ih(), iw()));
  }
  void run(const RunArgs& a) const override { run_float(*conv_, a); }

 private:
  std::unique_ptr<WBConv2d> conv_;
};

class ConvFBin : public ConvBase {
 public:
  explicit ConvFBin(BuildCtx& c) : ConvBase(c, false) {
    const int64_t ic = g_.in_channels;
    const TensorDesc* thr = c.tensor("in_threshold", {ic});
    const TensorDesc* flip = c.tensor("in_flip", {ic});
    if (flip && !thr) c.fail("in_flip given without in_threshold");
    c.check_finite(thr, "in_threshold", true);  // +-inf encode constant channels
    if (flip)
      for (int64_t i = 0; i < ic; ++i)
        if (flip->data[i] > 1) c.fail("in_flip values must be 0 or 1");
    input_scale_ = c.attr(kInputScale) != 0;
    const TensorDesc* bn_scale = c.tensor("bn_scale", {ic}, input_scale_);
    const TensorDesc* bn_shift = c.tensor("bn_shift", {ic}, input_scale_);
    c.check_finite(bn_scale, "bn_scale", false);
    c.check_finite(bn_shift, "bn_shift", false);
    // In place as TensorView; zeros = plain sign when the file has no thresholds
    rule_.channels = ic;
    if (c.vector_in_place(thr, alignof(float))) {
      rule_.thr = reinterpret_cast<const float*>(thr->data);
    } else {
      rule_.thr_copy = thr ? copy_f32(thr) : std::vector<float>(static_cast<size_t>(ic), 0.0f);
      rule_.thr = rule_.thr_copy.data();
    }
    if (c.vector_in_place(flip, 1)) {
      rule_.flip = flip->data;
    } else if (flip) {
      rule_.flip_copy.assign(flip->data, flip->data + flip->nbytes);
      rule_.flip = rule_.flip_copy.data();
    }
    bn_scale_ = TensorView<float>(c, bn_scale);
    bn_shift_ = TensorView<float>(c, bn_shift);
    domain_ = c.attr(kInputDomain) ? InputDomain::zero_one : InputDomain::pm1;
    // The {0, 1} form halves the output scale inside the kernel (bconv.cc): exact unless subnormal.
    if (domain_ == InputDomain::zero_one && scale_.data())
      for (int64_t o = 0; o < g_.out_channels; ++o)
        if ((scale_.data()[o] * 0.5f) * 2.0f != scale_.data()[o])
          c.fail("input_domain 1 needs normal (or zero) output scales; channel " + std::to_string(o) +
                 " has a subnormal scale");
    // A 1x1 unpadded strided conv (a ResNet downsample) reads only every stride-th pixel: its
    // float input is packed at those pixels only and a stride-1 twin of the conv runs on them.
    strided_1x1_ = g_.kernel_h == 1 && g_.kernel_w == 1 && g_.pad_h == 0 && g_.pad_w == 0 &&
                   (g_.stride_h > 1 || g_.stride_w > 1) && !input_scale_;
    switch (static_cast<WeightLayout>(weight_->layout)) {
      case WeightLayout::canonical: break;
      case WeightLayout::bconv_panel32: {
        check_layout_size(c, bconv_packed_sizes(g_).total);
        // Derived parts (padding prefix, 32-bit lanes) must agree with the panels, and no bit
        // may be set where run() assumes zeros: checked once here, read in place afterwards.
        const std::string bad = reinterpret_cast<uintptr_t>(weight_->data) % alignof(word_t)
                                    ? bconv_check_packed(g_, LoadView<word_t>(weight_).data())
                                    : bconv_check_packed(g_, weight_->data);
        if (!bad.empty()) c.fail("tensor weight (kernel layout bconv_panel32): " + bad);
        break;
      }
      default:
        c.fail(std::string("tensor weight: kernel layout ") + weight_layout_name(weight_->layout) +
               " is not a conv_fbin layout");
    }
  }
  void prepare() override {
    ConvGeometry g1 = g_;  // the strided twin's geometry (same packed form: 1x1, unpadded)
    g1.stride_h = g1.stride_w = 1;
    if (weight_->layout == static_cast<uint32_t>(WeightLayout::bconv_panel32)) {
      const word_t* packed = laid_out_data<word_t>();
      conv_ = std::make_unique<BConv2d>(BConv2d::view(g_, packed));
      if (strided_1x1_) conv_sub_ = std::make_unique<BConv2d>(BConv2d::view(g1, packed));
    } else {
      const LoadView<word_t> w(weight_);
      if (strided_1x1_) conv_sub_ = std::make_unique<BConv2d>(g1, w.data());
      conv_ = std::make_unique<BConv2d>(g_, w.data(), release_file_pages);
      own_vectors();
      bn_scale_.own();
      bn_shift_.own();
      if (rule_.thr_copy.empty()) {
        rule_.thr_copy.assign(rule_.thr, rule_.thr + rule_.channels);
        rule_.thr = rule_.thr_copy.data();
      }
      if (rule_.flip && rule_.flip_copy.empty()) {
        rule_.flip_copy.assign(rule_.flip, rule_.flip + rule_.channels);
        rule_.flip = rule_.flip_copy.data();
      }
    }
    conv_->set_input_domain(domain_);
    if (conv_sub_) conv_sub_->set_input_domain(domain_);
    // The transform's vectors (this op's and the bit plan's thresholds) never change behind
    // their pointers: integer-threshold cuts are derived once, not per run.
    conv_->keep_int_thresholds(out.h * out.w);
    if (conv_sub_) conv_sub_->keep_int_thresholds(out.h * out.w);
  }
  void file_ranges(std::vector<std::pair<const uint8_t*, size_t>>& out) const override {
    ConvBase::file_ranges(out);
    bn_scale_.file_range(out);
    bn_shift_.file_range(out);
    const size_t ic = static_cast<size_t>(rule_.channels);
    if (rule_.thr_copy.empty()) out.push_back({reinterpret_cast<const uint8_t*>(rule_.thr), ic * sizeof(float)});
    if (rule_.flip && rule_.flip_copy.empty()) out.push_back({rule_.flip, ic});
  }
  std::pair<int, int> packed_in_stride() const override {
    return strided_1x1_ ? std::make_pair(g_.stride_h, g_.stride_w) : std::make_pair(1, 1);
  }

  // Every bconv row's output stage reads a residual element just before it stores that element,
  // tiles never overlap, and the input is packed (or read as bits) before the tiles run.
  bool residual_in_place() const override { return true; }

  const BitRule* bit_input() const override { return input_scale_ ? nullptr : &rule_; }
  BitsOut bits_out() const override { return BitsOut::kernel; }

  size_t scratch_bytes(int64_t n, bool in_bits, bool packed_in) const override {
    const ValueShape& s = in[0];
    size_t b = align_up(conv_->workspace_bytes(static_cast<int>(n), ih(), iw()));
    if (strided_1x1_) b = std::max(b, align_up(conv_sub_->workspace_bytes(static_cast<int>(n), oh(), ow())));
    if (!in_bits && !packed_in)
      b += align_up(static_cast<size_t>(n * s.h * s.w * words_for(s.c)) * sizeof(word_t) + kOverReadBytes);
    if (input_scale_)
      b += align_up(static_cast<size_t>(n * s.h * s.w) * sizeof(float) + kOverReadBytes) +
           align_up(static_cast<size_t>(n * out.h * out.w) * sizeof(float) + kOverReadBytes);
    return b;
  }

  void run(const RunArgs& a) const override {
    const ValueShape& s = in[0];
    const int nn = static_cast<int>(a.n);
    const int64_t rows = a.n * s.h * s.w;
    OutputTransform t = transform(a);
    size_t ws = align_up(conv_->workspace_bytes(nn, ih(), iw()));
    if (strided_1x1_) ws = std::max(ws, align_up(conv_sub_->workspace_bytes(nn, oh(), ow())));
    uint8_t* cur = a.scratch + ws;
    const word_t* bits;
    // The stride-1 twin on the used pixels, unless the input arrives as full-size bits.
    const bool sub = strided_1x1_ && !a.in_bits[0];
    const BConv2d& conv = sub ? *conv_sub_ : *conv_;
    const int in_h = sub ? oh() : ih(), in_w = sub ? ow() : iw();
    if (a.in_bits[0]) {
      bits = reinterpret_cast<const word_t*>(a.in[0]);
    } else if (a.packed_in) {
      bits = a.packed_in;  // subsampled when strided_1x1_ (packed_in_stride)
    } else if (sub) {
      word_t* packed = reinterpret_cast<word_t*>(cur);
      pack_pixels_strided(a.in_f(0), a.n, s.h, s.w, s.c, g_.stride_h, g_.stride_w, rule_.thr, rule_.flip, packed, *a.pool);
      bits = packed;
    } else {
      const float* x = a.in_f(0);
      word_t* packed = reinterpret_cast<word_t*>(cur);
      cur += align_up(static_cast<size_t>(rows * words_for(s.c)) * sizeof(word_t) + kOverReadBytes);
      if (input_scale_) {
        // XNOR-Net's K: mean_c |bn(x)| box-filtered with the conv's own window, zero padding
        // counted (avg_pool2d count_include_pad=True).
        float* mean = reinterpret_cast<float*>(cur);
        cur += align_up(static_cast<size_t>(rows) * sizeof(float) + kOverReadBytes);
        float* k = reinterpret_cast<float*>(cur);
        mean_abs_affine(x, rows, s.c, bn_scale_.data(), bn_shift_.data(), mean, *a.pool);
        PoolParams pp{g_.kernel_h, g_.kernel_w, g_.stride_h, g_.stride_w,
                      g_.pad_h, g_.pad_w, out.h, out.w, true};
        avg_pool(mean, a.n, s.h, s.w, 1, pp, k, *a.pool);
        t.pixel_scale = k;
      }
      pack_rows(x, rows, static_cast<int>(s.c), s.c, packed, rule_.thr, rule_.flip, a.pool);
      bits = packed;
    }
    if (a.out_bits) {
      t.out_threshold = a.out_thr;
      t.out_flip = a.out_flip;
      conv.run_bits(bits, nn, in_h, in_w, t, reinterpret_cast<word_t*>(a.out), a.scratch, *a.pool);
    } else if (a.n_sinks > 0) {
      // A fused add's packed copies: each finished block of rows is packed while in cache, by
      // the rule (and kernel) the add's own fused pack would use.
      const BConv2d::RowsDone done = [&a, this](int64_t m0, int64_t m1) { pack_sinks(a, m0, m1, nullptr); };
      conv.run(bits, nn, in_h, in_w, t, a.out_f(), a.scratch, *a.pool, &done);
    } else {
      conv.run(bits, nn, in_h, in_w, t, a.out_f(), a.scratch, *a.pool);
    }
  }

 private:
  bool input_scale_ = false;
  InputDomain domain_ = InputDomain::pm1;
  bool strided_1x1_ = false;
  std::unique_ptr<BConv2d> conv_sub_;  // strided_1x1_: the same weights at stride 1
  BitRule rule_;
  TensorView<float> bn_scale_, bn_shift_;
  std::unique_ptr<BConv2d> conv_;
};

template <typename T>
std::unique_ptr<OpImpl> make(BuildCtx& c) {
  return std::make_unique<T>(c);
}

}  // namespace

const OpDef& op_def_conv_f32() {
  static const OpDef d{
      {OpType::conv_f32, "conv_f32", "fprec", 1, 1,
       {{"weight", DType::f32, true, "[OC,IC,KH,KW]"},
        {"scale", DType::f32, false, "[OC]"},
        {"bias", DType::f32, false, "[OC]"}},
       kConvAttrs,
       "FPrec conv, zero padding; `y = act(acc * scale + bias)`"},
      make<ConvF32>};
  return d;
}

const OpDef& op_def_conv_wbin() {
  static const OpDef d{
      {OpType::conv_wbin, "conv_wbin", "wbin", 1, 1,
       {{"weight", DType::bits, true, "[OC,KH,KW,words(IC)]"},
        {"scale", DType::f32, false, "[OC]"},
        {"bias", DType::f32, false, "[OC]"}},
       binary_attrs(false),
       "WeightBinConv: `acc = sum x * (+-1)`, then as conv_f32 (scale = alpha x BN scale)"},
      make<ConvWBin>};
  return d;
}

const OpDef& op_def_conv_fbin() {
  static const OpDef d{
      {OpType::conv_fbin, "conv_fbin", "fbin", 1, 1,
       {{"weight", DType::bits, true, "[OC,KH,KW,words(IC)]"},
        {"scale", DType::f32, false, "[OC]"},
        {"bias", DType::f32, false, "[OC]"},
        {"in_threshold", DType::f32, false, "[IC]"},
        {"in_flip", DType::u8, false, "[IC]"},
        {"bn_scale", DType::f32, false, "[IC]"},
        {"bn_shift", DType::f32, false, "[IC]"}},
       binary_attrs(true),
       "FullBinConv: input bit `c` = `flip[c] ? x > thr[c] : x < thr[c]` (plain `x < 0` without "
       "thresholds), bit 1 = input -1, or 0 when input_domain = 1 ({0,1} inputs); `acc` = dot "
       "product with the +-1 weights, zero padding (padded taps add 0); "
       "`y = act(acc * scale * K + bias)`, `K` = avg_pool(mean_c \\|x*bn_scale+bn_shift\\|, conv "
       "window, count_include_pad) when input_scale = 1 (bn_scale/bn_shift then required)"},
      make<ConvFBin>};
  return d;
}

}  // namespace hbn

#include "wbconv/wbconv.h"

#include <stdexcept>

#include "bitpack/binarize.h"
#include "hbn/weight_layout.h"
#include "fconv/conv_f32.h"
#include "fconv/gemm_driver.h"
#include "fconv/ukernel.h"
#include "wbconv/lut.h"
#include "wbconv/wb_pack.h"

namespace hbn {

namespace {

bool same_layout(const sgemm_detail::LutLayout& a, const sgemm_detail::LutLayout& b) {
  return a.nr == b.nr && a.group == b.group;  // mr is the tile's, not the panels'
}

}  // namespace

WBConv2d::WBConv2d(const ConvGeometry& g) : g_(g) {
  if (!g.valid())
    throw std::invalid_argument("conv geometry: channels, kernel and stride must be >= 1, padding >= 0");
  const KernelTable<sgemm_detail::LutKernel>& luts = sgemm_detail::lut_kernels();
  p_ = std::make_unique<Packed>(luts.size());
  p_->lut_ptr.assign(static_cast<size_t>(luts.size()), nullptr);
}

WBConv2d::WBConv2d(const ConvGeometry& g, const word_t* weight_bits,
                   const std::function<void(const void*, size_t)>& consumed) : WBConv2d(g) {
  const KernelTable<sgemm_detail::LutKernel>& luts = sgemm_detail::lut_kernels();
  const int row = luts.selected();
  if (row >= 0 && luts.row(row).kernel.always) {
    p_->kept_row = row;
    std::call_once(p_->lut_once[static_cast<size_t>(row)], [&] {
      p_->lut[static_cast<size_t>(row)] = pack_lut_panels(g, weight_bits, luts.row(row).kernel.layout, consumed);
      p_->lut_ptr[static_cast<size_t>(row)] = p_->lut[static_cast<size_t>(row)].data();
    });
  } else {
    std::call_once(p_->bits_once, [&] {
      p_->bits = pack_bit_panels(g, weight_bits, consumed);
      p_->bits_ptr = p_->bits.data();
    });
  }
}

WBConv2d WBConv2d::view(const ConvGeometry& g, const uint32_t* packed, const sgemm_detail::LutLayout* lut,
                        const std::function<void(const void*, size_t)>& consumed) {
  WBConv2d c(g);
  Packed& p = *c.p_;
  const int64_t K = static_cast<int64_t>(g.kernel_h) * g.kernel_w * g.in_channels, N = g.out_channels;
  if (lut) {
    p.view_lut = packed;
    p.view_layout = *lut;
  }
  const KernelTable<sgemm_detail::LutKernel>& luts = sgemm_detail::lut_kernels();
  const int row = luts.selected();
  size_t bytes = 0;  // of the caller's buffer, for consumed
  if (lut) {
    const int64_t step = lut->kstep();
    bytes = static_cast<size_t>((N + lut->nr - 1) / lut->nr * ((K + step - 1) / step) * lut->nr) * sizeof(uint32_t);
  } else {
    bytes = static_cast<size_t>((N + sgemm_detail::kNR - 1) / sgemm_detail::kNR * K) * sizeof(uint32_t);
  }
  if (row >= 0 && luts.row(row).kernel.always) {
    // This path keeps the LUT panels of its row: the caller's when they are in its layout.
    p.kept_row = row;
    if (lut && same_layout(*lut, luts.row(row).kernel.layout)) {
      std::call_once(p.lut_once[static_cast<size_t>(row)], [&] { p.lut_ptr[static_cast<size_t>(row)] = packed; });
      p.in_place = true;
      return c;
    }
    if (!lut) {
      std::call_once(p.bits_once, [&] { p.bits_ptr = packed; });  // for a later forced decode path
      std::call_once(p.lut_once[static_cast<size_t>(row)], [&] {
        p.lut[static_cast<size_t>(row)] = pack_lut_panels(packed, K, N, luts.row(row).kernel.layout, consumed);
        p.lut_ptr[static_cast<size_t>(row)] = p.lut[static_cast<size_t>(row)].data();
      });
      if (consumed) consumed(packed, bytes);
      return c;
    }
    c.lut_panels(row);  // another LUT layout: via bit panels (kept, see bit_panels)
    if (consumed) consumed(packed, bytes);
    return c;
  }
  // Every other path keeps the bit panels.
  if (!lut) {
    std::call_once(p.bits_once, [&] { p.bits_ptr = packed; });
    p.in_place = true;
    return c;
  }
  c.bit_panels();
  if (consumed) consumed(packed, bytes);
  return c;
}

uint32_t WBConv2d::native_layout() {
  const KernelTable<sgemm_detail::LutKernel>& luts = sgemm_detail::lut_kernels();
  const int row = luts.selected();
  if (row >= 0 && luts.row(row).kernel.always) {
    const sgemm_detail::LutLayout& l = luts.row(row).kernel.layout;
    if (!l.index_bytes && same_layout(l, sgemm_detail::LutLayout{128, 0, 4}))
      return static_cast<uint32_t>(WeightLayout::wbin_lut128g4);
  }
  return static_cast<uint32_t>(WeightLayout::wbin_bits32);
}

const uint32_t* WBConv2d::bit_panels() const {
  // Reached only when the constructor kept no bit panels: they come back from LUT panels.
  std::call_once(p_->bits_once, [&] {
    const int64_t K = static_cast<int64_t>(g_.kernel_h) * g_.kernel_w * g_.in_channels;
    if (p_->view_lut) {
      p_->bits = bit_panels_from_lut(p_->view_lut, K, g_.out_channels, p_->view_layout);
    } else {
      const int row = p_->kept_row;
      p_->bits = bit_panels_from_lut(p_->lut_ptr[static_cast<size_t>(row)], K, g_.out_channels,
                                     sgemm_detail::lut_kernels().row(row).kernel.layout);
    }
    p_->bits_ptr = p_->bits.data();
  });
  return p_->bits_ptr;
}

const uint32_t* WBConv2d::lut_panels(int row) const {
  std::call_once(p_->lut_once[static_cast<size_t>(row)], [&] {
    const sgemm_detail::LutLayout& layout = sgemm_detail::lut_kernels().row(row).kernel.layout;
    if (p_->view_lut && same_layout(p_->view_layout, layout)) {
      p_->lut_ptr[static_cast<size_t>(row)] = p_->view_lut;
      return;
    }
    const int64_t K = static_cast<int64_t>(g_.kernel_h) * g_.kernel_w * g_.in_channels;
    p_->lut[static_cast<size_t>(row)] = pack_lut_panels(bit_panels(), K, g_.out_channels, layout);
    p_->lut_ptr[static_cast<size_t>(row)] = p_->lut[static_cast<size_t>(row)].data();
  });
  return p_->lut_ptr[static_cast<size_t>(row)];
}

size_t WBConv2d::packed_bytes() const {
  size_t b = p_->bits.size() * sizeof(uint32_t);
  for (const std::vector<uint32_t>& v : p_->lut) b += v.size() * sizeof(uint32_t);
  return b;
}

WBConv2d WBConv2d::from_float(const ConvGeometry& g, const float* weight_oihw) {
  if (!g.valid())
    throw std::invalid_argument("conv geometry: channels, kernel and stride must be >= 1, padding >= 0");
  const std::vector<word_t> bits = binarize_oihw(g, weight_oihw);
  return WBConv2d(g, bits.data());
}

size_t WBConv2d::workspace_bytes(int, int in_h, int in_w) const {
  return sgemm_detail::conv_workspace_bytes(g_, algo_, in_h, in_w);
}

void WBConv2d::run(const float* in, int n, int in_h, int in_w, const OutputTransform& t,
                   float* out, void* workspace, ThreadPool& pool) const {
  sgemm_detail::GemmArgs a = sgemm_detail::conv_gemm_args(g_, algo_, in, n, in_h, in_w, t, out, workspace);
  a.bits_strategy = strategy_;
  // The LUT row dispatch takes now, with the panels packed for its layout, when the LUT kernel
  // will run this GEMM; else the bit panels. Each form is built on its first use.
  const KernelTable<sgemm_detail::LutKernel>& luts = sgemm_detail::lut_kernels();
  const int i = luts.selected();
  const sgemm_detail::LutKernel* lut = i >= 0 ? luts.select() : nullptr;
  if (lut && sgemm_detail::prefer_lut(*lut, sgemm_detail::active_kernels(), strategy_, a.M)) {
    a.b_lut = lut_panels(i);
    a.lut = lut;
  } else {
    a.b_bits = bit_panels();
  }
  sgemm_detail::gemm_run(a, pool);
}

void wbconv2d_reference(const ConvGeometry& g, const float* in, int n, int in_h, int in_w,
                        const word_t* weight_bits, float* out) {
  // The float reference on the +-1 weights (exact in double).
  const int IC = g.in_channels, KH = g.kernel_h, KW = g.kernel_w;
  std::vector<float> w(static_cast<size_t>(g.out_channels) * IC * KH * KW);
  for (int oc = 0; oc < g.out_channels; ++oc)
    for (int ic = 0; ic < IC; ++ic)
      for (int kh = 0; kh < KH; ++kh)
        for (int kw = 0; kw < KW; ++kw)
          w[((static_cast<size_t>(oc) * IC + ic) * KH + kh) * KW + kw] = weight_sign(g, weight_bits, oc, kh, kw, ic);
  conv2d_f32_reference(g, in, n, in_h, in_w, w.data(), out);
}

}  // namespace hbn

#include "wbgemm/wbgemm.h"

#include "sgemm/ukernel.h"

namespace hbn {

std::vector<uint32_t> pack_bit_panels(const ConvGeometry& g, const word_t* weight_bits) {
  constexpr int NR = sgemm_detail::kNR;
  const int OC = g.out_channels, IC = g.in_channels;
  const int64_t K = static_cast<int64_t>(g.kernel_h) * g.kernel_w * IC;
  const int64_t panels = (OC + NR - 1) / NR;
  std::vector<uint32_t> out(static_cast<size_t>(panels * K), 0u);
  for (int oc = 0; oc < OC; ++oc) {
    uint32_t* panel = out.data() + (oc / NR) * K;
    const uint32_t bit = 1u << (oc % NR);
    for (int kh = 0; kh < g.kernel_h; ++kh)
      for (int kw = 0; kw < g.kernel_w; ++kw)
        for (int ic = 0; ic < IC; ++ic)
          if (weight_sign(g, weight_bits, oc, kh, kw, ic) < 0)
            panel[(static_cast<int64_t>(kh) * g.kernel_w + kw) * IC + ic] |= bit;
  }
  return out;
}

std::vector<uint32_t> pack_lut_panels(const uint32_t* bit_panels, int64_t K, int64_t N) {
  constexpr int NR = sgemm_detail::kNR, LNR = sgemm_detail::kLutNR;
  const int64_t panels = (N + LNR - 1) / LNR, octets = (K + 31) / 32;
  std::vector<uint32_t> out(static_cast<size_t>(panels * octets * LNR), 0u);
  for (int64_t n = 0; n < N; ++n) {
    const uint32_t* col_bits = bit_panels + (n / NR) * K;
    const uint32_t bit = 1u << (n % NR);
    const int64_t p = n / LNR, lane_col = n % LNR;  // vector lane_col / 16, lane lane_col % 16
    for (int64_t k = 0; k < K; ++k)
      if (col_bits[k] & bit)
        out[(p * octets + k / 32) * LNR + lane_col] |= 1u << (k % 32);
  }
  return out;
}

std::vector<word_t> binarize_oihw(const ConvGeometry& g, const float* weight_oihw) {
  const int OC = g.out_channels, IC = g.in_channels, KH = g.kernel_h, KW = g.kernel_w;
  const int64_t words = words_for(IC);
  std::vector<word_t> bits(static_cast<size_t>(OC * KH * KW * words), 0u);
  for (int oc = 0; oc < OC; ++oc)
    for (int ic = 0; ic < IC; ++ic)
      for (int kh = 0; kh < KH; ++kh)
        for (int kw = 0; kw < KW; ++kw) {
          const float w = weight_oihw[((static_cast<int64_t>(oc) * IC + ic) * KH + kh) * KW + kw];
          if (w < 0.0f)
            bits[((static_cast<int64_t>(oc) * KH + kh) * KW + kw) * words + ic / kWordBits] |=
                word_t{1} << (ic % kWordBits);
        }
  return bits;
}

}  // namespace hbn

#include "wbconv/wb_pack.h"

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

std::vector<uint32_t> pack_lut_panels(const uint32_t* bit_panels, int64_t K, int64_t N,
                                      const sgemm_detail::LutLayout& layout) {
  constexpr int NR = sgemm_detail::kNR;
  const int64_t LNR = layout.nr, G = layout.group, step = layout.kstep();
  const int64_t panels = (N + LNR - 1) / LNR, words = (K + step - 1) / step;
  std::vector<uint32_t> out(static_cast<size_t>(panels * words * LNR), 0u);
  for (int64_t n = 0; n < N; ++n) {
    const uint32_t* col_bits = bit_panels + (n / NR) * K;
    const uint32_t bit = 1u << (n % NR);
    const int64_t p = n / LNR, lane_col = n % LNR;  // vector lane_col / lanes, lane lane_col % lanes
    for (int64_t k = 0; k < K; ++k)
      if (col_bits[k] & bit) {
        const int64_t within = k % step;  // group within / G (nibble), input within % G (bit)
        out[(p * words + k / step) * LNR + lane_col] |= 1u << (4 * (within / G) + within % G);
      }
  }
  return out;
}

std::vector<uint32_t> bit_panels_from_lut(const uint32_t* lut_panels, int64_t K, int64_t N,
                                          const sgemm_detail::LutLayout& layout) {
  constexpr int NR = sgemm_detail::kNR;
  const int64_t LNR = layout.nr, G = layout.group, step = layout.kstep(), words = (K + step - 1) / step;
  std::vector<uint32_t> out(static_cast<size_t>((N + NR - 1) / NR * K), 0u);
  for (int64_t n = 0; n < N; ++n) {
    uint32_t* col_bits = out.data() + (n / NR) * K;
    const uint32_t bit = 1u << (n % NR);
    const uint32_t* lane = lut_panels + (n / LNR) * words * LNR + n % LNR;
    for (int64_t k = 0; k < K; ++k) {
      const int64_t within = k % step;
      if ((lane[(k / step) * LNR] >> (4 * (within / G) + within % G)) & 1u) col_bits[k] |= bit;
    }
  }
  return out;
}

}  // namespace hbn

#include "wbconv/wb_pack.h"

#include <algorithm>

namespace hbn {

namespace {

// Sign bits of canonical weights row by row: row(oc) is output channel oc's [KH][KW][words] run.
struct CanonicalRows {
  const ConvGeometry& g;
  const word_t* bits;
  int64_t row_words() const { return static_cast<int64_t>(g.kernel_h) * g.kernel_w * words_for(g.in_channels); }
  // Whether weight (oc, k) is -1, k = (kh*KW + kw)*IC + ic.
  bool neg(int64_t oc, int64_t k) const {
    const int64_t IC = g.in_channels, tap = k / IC, ic = k % IC;
    const word_t w = bits[oc * row_words() + tap * words_for(g.in_channels) + ic / kWordBits];
    return (w >> (ic % kWordBits)) & 1u;
  }
  void report(const ConsumedFn& consumed, int64_t rows_done) const {
    if (consumed) consumed(bits, static_cast<size_t>(rows_done * row_words()) * sizeof(word_t));
  }
};

// LUT panels of `layout` for N columns whose signs neg(n, k) gives; done(n_end) after each
// panel, whose columns end at n_end.
template <typename Neg, typename Done>
std::vector<uint32_t> pack_lut(int64_t K, int64_t N, const sgemm_detail::LutLayout& layout, Neg neg, Done done) {
  const int64_t LNR = layout.nr, G = layout.group, step = layout.kstep();
  const int64_t panels = (N + LNR - 1) / LNR, words = (K + step - 1) / step;
  // Byte-index panels get one more word step of padding: the NEON kernel reads the index word
  // of the group after the last (lut_neon.cc) and never uses it.
  const int64_t pad = layout.index_bytes ? LNR : 0;
  std::vector<uint32_t> out(static_cast<size_t>(panels * words * LNR + pad), 0u);
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t n_end = std::min(N, (p + 1) * LNR);
    for (int64_t n = p * LNR; n < n_end; ++n) {
      uint32_t* lane = out.data() + p * words * LNR + n % LNR;  // vector (n % LNR) / lanes
      if (layout.index_bytes) {
        // Byte (group, column) of the panel = 16 x the pattern (wbconv/lut.h).
        uint8_t* bytes = reinterpret_cast<uint8_t*>(out.data() + p * words * LNR);
        for (int64_t k = 0; k < K; ++k)
          if (neg(n, k)) bytes[(k / G) * LNR + n % LNR] |= static_cast<uint8_t>(16u << (k % G));
        continue;
      }
      for (int64_t k = 0; k < K; ++k)
        if (neg(n, k)) {
          const int64_t within = k % step;  // group within / G (nibble), input within % G (bit)
          lane[(k / step) * LNR] |= 1u << (4 * (within / G) + within % G);
        }
    }
    done(n_end);
  }
  return out;
}

}  // namespace

std::vector<uint32_t> pack_bit_panels(const ConvGeometry& g, const word_t* weight_bits, const ConsumedFn& consumed) {
  constexpr int NR = sgemm_detail::kNR;
  const int OC = g.out_channels;
  const int64_t K = static_cast<int64_t>(g.kernel_h) * g.kernel_w * g.in_channels;
  const int64_t panels = (OC + NR - 1) / NR;
  const CanonicalRows rows{g, weight_bits};
  std::vector<uint32_t> out(static_cast<size_t>(panels * K), 0u);
  for (int oc = 0; oc < OC; ++oc) {
    uint32_t* panel = out.data() + (oc / NR) * K;
    const uint32_t bit = 1u << (oc % NR);
    for (int64_t k = 0; k < K; ++k)
      if (rows.neg(oc, k)) panel[k] |= bit;
    if (oc % NR == NR - 1 || oc == OC - 1) rows.report(consumed, oc + 1);
  }
  return out;
}

std::vector<uint32_t> pack_lut_panels(const uint32_t* bit_panels, int64_t K, int64_t N,
                                      const sgemm_detail::LutLayout& layout, const ConsumedFn& consumed) {
  constexpr int NR = sgemm_detail::kNR;
  return pack_lut(
      K, N, layout, [&](int64_t n, int64_t k) { return (bit_panels[(n / NR) * K + k] >> (n % NR)) & 1u; },
      [&](int64_t n_end) {  // bit panels wholly before column n_end are read
        if (consumed && n_end / NR > 0) consumed(bit_panels, static_cast<size_t>(n_end / NR * K) * sizeof(uint32_t));
      });
}

std::vector<uint32_t> pack_lut_panels(const ConvGeometry& g, const word_t* weight_bits,
                                      const sgemm_detail::LutLayout& layout, const ConsumedFn& consumed) {
  const CanonicalRows rows{g, weight_bits};
  const int64_t K = static_cast<int64_t>(g.kernel_h) * g.kernel_w * g.in_channels;
  return pack_lut(
      K, g.out_channels, layout, [&](int64_t n, int64_t k) { return rows.neg(n, k); },
      [&](int64_t n_end) { rows.report(consumed, n_end); });
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
    if (layout.index_bytes) {
      const uint8_t* bytes = reinterpret_cast<const uint8_t*>(lut_panels + (n / LNR) * words * LNR);
      for (int64_t k = 0; k < K; ++k)
        if ((bytes[(k / G) * LNR + n % LNR] >> (4 + k % G)) & 1u) col_bits[k] |= bit;
      continue;
    }
    for (int64_t k = 0; k < K; ++k) {
      const int64_t within = k % step;
      if ((lane[(k / step) * LNR] >> (4 * (within / G) + within % G)) & 1u) col_bits[k] |= bit;
    }
  }
  return out;
}

}  // namespace hbn

// The portable qgemm row: the reference definition of the int8 micro-tile.
#include "qconv/qgemm.h"
#include "qconv/qgemm_rows.h"

namespace hbn {
namespace qgemm {

void tile_scalar(const uint8_t* a, int64_t lda, int rows, const int8_t* panel, int64_t k4,
                 const int32_t*, int32_t* acc) {
  for (int r = 0; r < rows; ++r) {
    int32_t s[kQNR] = {};
    const uint8_t* ar = a + r * lda;
    for (int64_t g = 0; g < k4 / kQKGroup; ++g) {
      const int8_t* w = panel + g * kQKGroup * kQNR;
      const uint8_t* ag = ar + g * kQKGroup;
      for (int j = 0; j < kQNR; ++j)
        for (int t = 0; t < kQKGroup; ++t) s[j] += int32_t(ag[t]) * int32_t(w[j * kQKGroup + t]);
    }
    for (int j = 0; j < kQNR; ++j) acc[r * kQNR + j] = s[j];
  }
}

// The direct tile's definition: body group g of each row at koff[g], tail group u at
// t + r * ldt + 4u, against the panels in order.
void direct_scalar(const QRuns& a, int rows, int np, const int8_t* panel, int64_t k4, const int32_t*,
                   int32_t* acc) {
  const int64_t body = k4 / kQKGroup - a.tgroups;
  for (int i = 0; i < np; ++i)
    for (int r = 0; r < rows; ++r) {
      int32_t s[kQNR] = {};
      for (int64_t g = 0; g < k4 / kQKGroup; ++g) {
        const int8_t* w = panel + (i * k4 + g * kQKGroup) * kQNR;
        const uint8_t* ag = g < body ? a.a + r * a.lda + a.koff[g] : a.t + r * a.ldt + (g - body) * kQKGroup;
        for (int j = 0; j < kQNR; ++j)
          for (int t = 0; t < kQKGroup; ++t) s[j] += int32_t(ag[t]) * int32_t(w[j * kQKGroup + t]);
      }
      for (int j = 0; j < kQNR; ++j) acc[(i * kQMaxMR + r) * kQNR + j] = s[j];
    }
}

// The bit output's definition, element by element: apply_transform's operations on acc - zc,
// then threshold_bit's comparison.
void store_bits_scalar(const int32_t* acc, int rows, int jn, const QStore& s, uint16_t* bits) {
  for (int r = 0; r < rows; ++r) {
    uint32_t m = 0;
    for (int j = 0; j < jn; ++j) {
      const int32_t d = static_cast<int32_t>(static_cast<uint32_t>(acc[r * kQNR + j]) - static_cast<uint32_t>(s.zc[j]));
      float y = static_cast<float>(d) * s.scale[j];
      y = y + s.bias[j];
      if (s.relu && !(y > 0.0f)) y = 0.0f;
      const bool bit = (s.flip >> j & 1u) ? (y > s.thr[j]) : (y < s.thr[j]);
      m |= uint32_t(bit) << j;
    }
    bits[r] = static_cast<uint16_t>(m);
  }
}

QKernel qkernel_scalar() {
  return {4, tile_scalar, nullptr, store_rows_impl, quantize_impl, store_bits_scalar, direct_scalar, 4, 1};
}

}  // namespace qgemm
}  // namespace hbn

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

QKernel qkernel_scalar() { return {4, tile_scalar, nullptr, store_rows_impl, quantize_impl}; }

}  // namespace qgemm
}  // namespace hbn

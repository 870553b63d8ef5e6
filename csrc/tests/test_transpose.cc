// The layout transpose: every path equals the scalar definition on shapes that straddle the
// 8x8 tile (and on strided source/destination rows).
#include <cstdio>
#include <vector>

#include "hbn/isa.h"
#include "runtime/transpose.h"

int main() {
  int failures = 0;
  const int sizes[] = {1, 3, 7, 8, 9, 15, 16, 17, 64, 65, 196, 256};
  for (hbn::Isa isa : {hbn::Isa::scalar, hbn::Isa::avx2, hbn::Isa::avx512, hbn::Isa::neon}) {
    if (!hbn::set_isa(isa)) continue;
    for (int rows : sizes)
      for (int cols : sizes) {
        const int64_t sld = cols + 3, dld = rows + 5;
        std::vector<float> src(rows * sld), got(cols * dld, -1.0f), want(cols * dld, -1.0f);
        for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i) * 0.5f - 7.0f;
        hbn::transpose_block(src.data(), rows, cols, sld, got.data(), dld);
        hbn::transpose_block_reference(src.data(), rows, cols, sld, want.data(), dld);
        if (got != want) {
          std::fprintf(stderr, "transpose mismatch isa=%s rows=%d cols=%d\n", hbn::isa_name(isa), rows, cols);
          ++failures;
        }
      }
  }
  hbn::reset_isa();
  if (failures) return 1;
  std::puts("test_transpose: ok");
  return 0;
}

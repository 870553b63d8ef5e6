// The layout transpose: every path equals the scalar definition on shapes that straddle the
// 8x8 tile (and on strided source/destination rows).
#include <cstdio>
#include <string>
#include <vector>

#include "runtime/transpose.h"
#include "tests/check.h"

int main() {
  const int sizes[] = {1, 3, 7, 8, 9, 15, 16, 17, 64, 65, 196, 256};
  for (const std::string& isa : hbn_test::supported_paths()) {
    hbn::set_isa(isa);
    for (int rows : sizes)
      for (int cols : sizes) {
        const int64_t sld = cols + 3, dld = rows + 5;
        std::vector<float> src(rows * sld), got(cols * dld, -1.0f), want(cols * dld, -1.0f);
        for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i) * 0.5f - 7.0f;
        hbn::transpose_block(src.data(), rows, cols, sld, got.data(), dld);
        hbn::transpose_block_reference(src.data(), rows, cols, sld, want.data(), dld);
        CHECK(got == want, "transpose mismatch isa=%s rows=%d cols=%d", isa.c_str(), rows, cols);
      }
  }
  hbn::reset_isa();
  return hbn_test::finish("test_transpose");
}

// The micro-kernel table and the portable scalar micro-kernels (the reference every SIMD tile is
// tested against, and the path on CPUs without a SIMD build).
#include "fconv/ukernel.h"

#include <stdexcept>

namespace hbn {
namespace sgemm_detail {

void store_tile_scalar(const float* acc, int acc_ld, const Tile& tile) {
  for (int r = 0; r < tile.mr; ++r) {
    float* c = tile.c + r * tile.ldc;
    for (int j = 0; j < tile.nr; ++j) {
      float v = acc[r * acc_ld + j];
      if (tile.accumulate) v += c[j];
      if (tile.t) v = apply_transform(*tile.t, v, tile.m0 + r, tile.n0 + j);
      c[j] = v;
    }
  }
}

namespace {

constexpr int kScalarMR = 4;

// acc[r][j] = sum_k a(r, k) * b[k][j], accumulated in float in k order (as the SIMD kernels do).
template <int R>
void scalar_f32_tile(const ARuns& A, const float* b, const Tile& tile) {
  float acc[R][kNR] = {};
  for (int run = 0; run < A.nruns; ++run) {
    const float* a = A.a + run * A.run_stride;
    for (int k = 0; k < A.len; ++k) {
      const float* bk = b + static_cast<int64_t>(run * A.len + k) * kNR;
      for (int r = 0; r < R; ++r) {
        const float av = a[r * A.lda + k];
        for (int j = 0; j < kNR; ++j) acc[r][j] += av * bk[j];
      }
    }
  }
  store_tile_scalar(&acc[0][0], kNR, tile);
}

void scalar_f32(const ARuns& a, const float* b, const Tile& tile) {
  dispatch_rows<kScalarMR>(tile.mr, [&](auto r) { scalar_f32_tile<decltype(r)::value>(a, b, tile); });
}

}  // namespace

KernelSet avx512_kernels();  // ukernel_avx512.cc
KernelSet avx2_kernels();    // ukernel_avx2.cc
KernelSet neon_kernels();    // ukernel_neon.cc

const KernelTable<KernelSet>& sgemm_kernels() {
  static const KernelTable<KernelSet> table("sgemm", {
      HBN_X86_ROW({kAvx512, "avx512", avx512_kernels()})
      HBN_X86_ROW({kAvx2, "avx2", avx2_kernels()})
      HBN_ARM64_ROW({kNeon, "neon", neon_kernels()})
      {kNoFeatures, "scalar", KernelSet{kScalarMR, 16, 256, &scalar_f32, nullptr}},
  });
  return table;
}

}  // namespace sgemm_detail
}  // namespace hbn

// Kernel-set dispatch and the portable scalar micro-kernels (the reference every SIMD tile is
// tested against, and the path on CPUs without a SIMD build).
#include "sgemm/ukernel.h"

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

const KernelSet& scalar_kernels() {
  static const KernelSet ks{Isa::scalar, kScalarMR, 16, 256, &scalar_f32, nullptr, nullptr, {}};
  return ks;
}

const KernelSet& kernels_for(Isa isa) {
  switch (isa) {
#if defined(HBN_X86)
    case Isa::avx512: return avx512_kernels();
    case Isa::avx2: return avx2_kernels();
#endif
#if defined(HBN_ARM64)
    case Isa::neon: return neon_kernels();
#endif
    default: return scalar_kernels();
  }
}

}  // namespace sgemm_detail
}  // namespace hbn

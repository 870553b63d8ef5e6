// NEON (aarch64) micro-kernels: 6 x 16 register tiles (24 q accumulators + 4 B vectors), run
// twice to cover the 32-column panel. The binary-weight tile decodes signs in registers with
// one test-bits + one bit-select per 4 columns (see choose_bits_strategy for when it is used).
#include <arm_neon.h>

#include "fconv/ukernel.h"

namespace hbn {
namespace sgemm_detail {
namespace {

constexpr int kMR = 6;

// Shared loop: load_b(k, h, b) fills b[0..3] with columns 16h .. 16h + 15 of row k. The
// transform is a handful of operations per element against kc FMAs, so every tile goes through
// the shared scalar store, which keeps this path's transform identical to the definition.
template <int R, typename LoadB>
inline void neon_tile(const ARuns& A, LoadB load_b, const Tile& tile) {
  float buf[R][kNR];
  for (int h = 0; h < 2; ++h) {
    float32x4_t acc[R][4];
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < 4; ++q) acc[r][q] = vdupq_n_f32(0.0f);
    if (16 * h < tile.nr) {
      for (int run = 0; run < A.nruns; ++run) {
        const float* a = A.a + run * A.run_stride;
        const int kb = run * A.len;
        for (int k = 0; k < A.len; ++k) {
          float32x4_t b[4];
          load_b(kb + k, h, b);
          for (int r = 0; r < R; ++r) {
            const float av = a[r * A.lda + k];
            for (int q = 0; q < 4; ++q) acc[r][q] = vfmaq_n_f32(acc[r][q], b[q], av);
          }
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int q = 0; q < 4; ++q) vst1q_f32(&buf[r][16 * h + 4 * q], acc[r][q]);
  }
  store_tile_scalar(&buf[0][0], kNR, tile);
}

template <int R>
void f32_tile(const ARuns& a, const float* b, const Tile& tile) {
  neon_tile<R>(a,
               [b](int k, int h, float32x4_t* v) {
                 const float* row = b + k * kNR + 16 * h;
                 for (int q = 0; q < 4; ++q) v[q] = vld1q_f32(row + 4 * q);
               },
               tile);
}

// Bit j of bits[k] selects -1 for column j (types.h convention): test each lane's bit, then
// select -1 or +1.
template <int R>
void bits_tile(const ARuns& a, const uint32_t* bits, const Tile& tile) {
  const float32x4_t one = vdupq_n_f32(1.0f), neg = vdupq_n_f32(-1.0f);
  uint32x4_t lane[4];
  for (int q = 0; q < 4; ++q) {
    const uint32_t m[4] = {1u << (4 * q), 2u << (4 * q), 4u << (4 * q), 8u << (4 * q)};
    lane[q] = vld1q_u32(m);
  }
  neon_tile<R>(a,
               [&](int k, int h, float32x4_t* v) {
                 const uint32x4_t w = vdupq_n_u32(bits[k] >> (16 * h));
                 for (int q = 0; q < 4; ++q) v[q] = vbslq_f32(vtstq_u32(w, lane[q]), neg, one);
               },
               tile);
}

void f32_kernel(const ARuns& a, const float* b, const Tile& tile) {
  dispatch_rows<kMR>(tile.mr, [&](auto r) { f32_tile<decltype(r)::value>(a, b, tile); });
}

void bits_kernel(const ARuns& a, const uint32_t* bits, const Tile& tile) {
  dispatch_rows<kMR>(tile.mr, [&](auto r) { bits_tile<decltype(r)::value>(a, bits, tile); });
}

}  // namespace

KernelSet neon_kernels() { return KernelSet{kMR, 32, 256, &f32_kernel, &bits_kernel, true}; }

}  // namespace sgemm_detail
}  // namespace hbn

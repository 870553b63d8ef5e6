// The blocked GEMM loop nest shared by Sgemm, Conv2dF32 and WBConv2d:
//   C[M][N] = transform(A[M][K] * B[K][N])
// A is either a row-major matrix (linear layers, 1x1 stride-1 convs; read in place, or copied
// block by block when its rows would collide in L1) or the implicit im2col matrix of an NHWC
// input (rows = output pixels, k = (kh*KW + kw)*IC + ic), materialised one MC x KC block at a
// time so the workspace stays bounded whatever the image.
// B is pre-packed float panels or bit panels (see ukernel.h), or LUT panels (wbconv/lut.h).
// gemm_run picks one driver: LUT (wbconv/lut_driver.cc), direct (gemm_direct.cc) or blocked
// (gemm_blocked.cc).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

#include "fconv/conv_algo.h"
#include "fconv/ukernel.h"
#include "hbn/conv_geometry.h"
#include "hbn/threadpool.h"
#include "wbconv/wb_strategy.h"
#include "transform/output_transform.h"

namespace hbn {
namespace sgemm_detail {

struct LutKernel;

struct ASource {
  // Plain matrix (used when conv == nullptr).
  const float* a = nullptr;
  int64_t lda = 0;
  // Implicit im2col of an NHWC image batch.
  const ConvGeometry* conv = nullptr;
  const float* in = nullptr;
  int in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  ConvAlgo algo = ConvAlgo::automatic;
};

struct GemmArgs {
  int64_t M = 0, N = 0, K = 0;
  ASource A;
  const float* b_packed = nullptr;   // [ceil(N/32)][K][32] or null
  const uint32_t* b_bits = nullptr;  // [ceil(N/32)][K] or null (then b_lut must take the GEMM)
  const uint32_t* b_lut = nullptr;   // the same signs as LUT panels (wbconv/wb_pack.h), or null
  const LutKernel* lut = nullptr;    // the LUT kernel whose layout b_lut has
  WBStrategy bits_strategy = WBStrategy::automatic;
  const OutputTransform* t = nullptr;  // null = identity
  float* C = nullptr;
  int64_t ldc = 0;
  void* workspace = nullptr;  // gemm_workspace_bytes() bytes, kAlignment-aligned or not
  // Optional: called with ranges [m0, m1) of rows of C as they become final (from the thread
  // that finished them; each row at most once, possibly never: the caller handles the rest
  // after gemm_run). The direct conv driver reports each band of output rows.
  const std::function<void(int64_t, int64_t)>* rows_done = nullptr;
};

// The direct path pays no copy of A, but its tiles cannot cross an output row and its A rows
// are stride * IC floats apart in the image instead of packed together; im2col pays a copy per
// kernel row per output pixel, dearest with few channels (a 7x7 RGB kernel row is 21 floats).
// Measured (gemm_driver.cc): direct is never slower once a kernel row fits a K block, which is
// what prefer_direct tests (the active ISA's K block decides at run time; im2col otherwise).
bool prefer_direct(const ConvGeometry& g);
// Workspace for a conv: gemm_workspace_bytes() plus, for the direct path with padding, one
// zero-padded image.
size_t conv_workspace_bytes(const ConvGeometry& g, ConvAlgo algo, int in_h, int in_w);

// Per-thread scratch slots: run() never uses more threads than this, so the workspace can be
// sized without knowing which pool will run the layer.
int gemm_scratch_slots();
// Workspace for any problem on any ISA (bounded: it does not grow with M, N or K).
size_t gemm_workspace_bytes();
void gemm_run(const GemmArgs& args, ThreadPool& pool);

// Packs a float B given by an element getter into [ceil(N/32)][K][32] panels (zero tails).
template <typename Get>
void pack_b_panels(int64_t K, int64_t N, Get get, float* out) {
  const int64_t panels = (N + kNR - 1) / kNR;
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t k = 0; k < K; ++k)
      for (int j = 0; j < kNR; ++j) {
        const int64_t n = p * kNR + j;
        out[(p * K + k) * kNR + j] = n < N ? get(k, n) : 0.0f;
      }
}

}  // namespace sgemm_detail
}  // namespace hbn

// Single-precision GEMM with a pre-packed right-hand side, for FPrec layers, the first conv and
// float linear layers:  C[M][N] = transform(A[M][K] * B[K][N]).
// Goto/BLIS-style: B packed once into 32-column panels, K blocked so a micro-panel of B stays
// in L1 while row tiles of A stream past it, MR x 32 register-blocked FMA micro-kernels per ISA
// (AVX-512 14x32, AVX2 6x16 twice, NEON 6x16 twice, scalar 4x32), the output transform fused
// into the store of the last K block, rows (or column panels for short M) split over threads.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "hbn/threadpool.h"
#include "fconv/aligned.h"
#include "transform/output_transform.h"

namespace hbn {

class Sgemm {
 public:
  // b: [K][N] with row stride ldb (>= N); packed here once.
  Sgemm(int64_t K, int64_t N, const float* b, int64_t ldb);
  int64_t K() const { return K_; }
  int64_t N() const { return N_; }
  // Bounded scratch, independent of M.
  static size_t workspace_bytes();
  // a: [M][K] row stride lda; c: [M][N] row stride ldc. t.out_threshold must be null.
  void run(int64_t M, const float* a, int64_t lda, const OutputTransform& t, float* c,
           int64_t ldc, void* workspace, ThreadPool& pool) const;

 private:
  int64_t K_, N_;
  AlignedVector<float> packed_;
};

// Reference: double accumulation, then apply_transform. c: [M][N] row stride N.
void sgemm_reference(int64_t M, int64_t N, int64_t K, const float* a, const float* b,
                     const OutputTransform& t, float* c);

}  // namespace hbn

#include "fconv/sgemm.h"

#include <stdexcept>

#include "fconv/gemm_driver.h"

namespace hbn {

using sgemm_detail::kNR;

Sgemm::Sgemm(int64_t K, int64_t N, const float* b, int64_t ldb) : K_(K), N_(N) {
  if (K < 0 || N < 0 || ldb < N) throw std::invalid_argument("Sgemm: bad shape");
  packed_.resize(static_cast<size_t>((N + kNR - 1) / kNR * K * kNR));
  sgemm_detail::pack_b_panels(K, N, [&](int64_t k, int64_t n) { return b[k * ldb + n]; },
                              packed_.data());
}

size_t Sgemm::workspace_bytes() { return sgemm_detail::gemm_workspace_bytes(); }

void Sgemm::run(int64_t M, const float* a, int64_t lda, const OutputTransform& t, float* c,
                int64_t ldc, void* workspace, ThreadPool& pool) const {
  if (M < 0 || lda < K_ || ldc < N_) throw std::invalid_argument("Sgemm::run: bad M, lda or ldc");
  sgemm_detail::GemmArgs args;
  args.M = M;
  args.N = N_;
  args.K = K_;
  args.A.a = a;
  args.A.lda = lda;
  args.b_packed = packed_.data();
  args.t = &t;
  args.C = c;
  args.ldc = ldc;
  args.workspace = workspace;
  sgemm_detail::gemm_run(args, pool);
}

void sgemm_reference(int64_t M, int64_t N, int64_t K, const float* a, const float* b,
                     const OutputTransform& t, float* c) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(a[m * K + k]) * b[k * N + n];
      c[m * N + n] = apply_transform(t, static_cast<float>(acc), m, n);
    }
}

}  // namespace hbn

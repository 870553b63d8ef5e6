#include <algorithm>

#include "fconv/gemm_internal.h"
#include "wbconv/lut.h"

namespace hbn {
namespace sgemm_detail {

// The table-lookup driver (UKernelLut): row tiles of L.mr rows against LUT panels of L.nr
// columns, with the same blocking as gemm_run (row blocks x K blocks, im2col blocks built once
// per K block and reused by every panel, column panels split over threads for short M).
// Measured on Zen 4, one thread, G (float) MACs/s, LUT vs decode-in-registers + FMA (the FMA
// peak is 59): 3x3 256->256 on 14x14 118 vs 48, 512->512 on 7x7 123 vs 48, 128->128 on 28x28
// 116 vs 47, SqueezeNet conv10 (1x1 512->1000, 13x13) 121 vs 47, fc 9216->4096 batch 1 ~85 vs
// 28; 1x1 128->32 on 55x55 80 vs 47, 128->16 42 vs 42 (the kernel computes only the vectors
// holding valid columns). Tiles of 2 and 4 rows measured 112-121 and 83-119. So AVX-512
// always takes it for bits.
void run_lut(const GemmArgs& args, const LutKernel& lut, const KernelSet& ks, char* ws, ThreadPool& pool) {
  const int64_t M = args.M, N = args.N, K = args.K;
  const LutLayout& L = lut.layout;
  const int64_t step = L.kstep(), words = (K + step - 1) / step;
  const int64_t panels = (N + L.nr - 1) / L.nr;
  const int KC = std::max<int>(ks.kc / L.kstep(), 1) * L.kstep();  // K blocks start on words
  const int64_t MC_max = static_cast<int64_t>(ks.mr) * ks.mc_tiles / L.mr * L.mr;
  const int slots = std::min(pool.num_threads(), gemm_scratch_slots());
  const WorkSplit sp = split_work(M, panels, MC_max, L.mr, slots);
  const int64_t MC = sp.MC, n_chunks = sp.n_chunks, per_chunk = sp.per_chunk, tasks = sp.tasks();
  const size_t slot_bytes = max_slot_bytes();
  static const OutputTransform identity;

  auto body = [&](int64_t t_begin, int64_t t_end, int slot) {
    float* a_buf = reinterpret_cast<float*>(ws + slot * slot_bytes);
    const int64_t ld_buf = a_stride(KC);
    for (int64_t task = t_begin; task < t_end; ++task) {
      const int64_t mb = task / n_chunks, nc = task % n_chunks;
      const int64_t m0 = mb * MC, m1 = std::min(M, m0 + MC);
      const int64_t p0 = nc * per_chunk, p1 = std::min(panels, p0 + per_chunk);
      for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int kc = static_cast<int>(std::min<int64_t>(KC, K - k0));
        const float* a;
        int64_t lda;
        if (args.A.conv) {
          im2col_block(args.A, m0, static_cast<int>(m1 - m0), k0, kc, a_buf, ld_buf);
          a = a_buf;
          lda = ld_buf;
        } else {
          a = args.A.a + m0 * args.A.lda + k0;
          lda = args.A.lda;
        }
        Tile tile;
        tile.ldc = args.ldc;
        tile.accumulate = k0 > 0;
        tile.t = k0 + kc == K ? (args.t ? args.t : &identity) : nullptr;
        for (int64_t p = p0; p < p1; ++p) {
          const uint32_t* panel = args.b_lut + (p * words + k0 / step) * L.nr;
          tile.nr = static_cast<int>(std::min<int64_t>(L.nr, N - p * L.nr));
          tile.n0 = p * L.nr;
          for (int64_t i = m0; i < m1; i += L.mr) {
            tile.mr = static_cast<int>(std::min<int64_t>(L.mr, m1 - i));
            tile.m0 = i;
            tile.c = args.C + i * args.ldc + p * L.nr;
            lut.fn(a + (i - m0) * lda, lda, kc, panel, tile);
          }
        }
      }
    }
  };
  pool.parallel_for_dynamic(tasks, [&body](int64_t b, int64_t e, int slot) { body(b, e, slot); }, 1, slots);
}

}  // namespace sgemm_detail
}  // namespace hbn

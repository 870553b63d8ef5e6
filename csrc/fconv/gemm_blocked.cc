// The blocked driver: row blocks x K blocks of A (a matrix read in place or copied, or im2col
// blocks of a conv) against every B micro-panel of the task's column chunk.
#include <algorithm>
#include <cstring>

#include "fconv/gemm_internal.h"

namespace hbn {
namespace sgemm_detail {

void run_blocked(const GemmArgs& args, const KernelSet& ks, char* ws, ThreadPool& pool) {
  const int64_t M = args.M, N = args.N, K = args.K;
  const bool use_bits = args.b_bits != nullptr;
  const int mr = ks.mr;
  const int64_t MC_max = static_cast<int64_t>(mr) * ks.mc_tiles;
  const int KC = ks.kc;
  const int64_t panels = (N + kNR - 1) / kNR;
  const int slots = std::min(pool.num_threads(), gemm_scratch_slots());
  const WorkSplit sp = split_work(M, panels, MC_max, mr, slots);
  const int64_t MC = sp.MC, n_chunks = sp.n_chunks, panels_per_chunk = sp.per_chunk;
  const int64_t tasks = sp.tasks();

  const size_t slot_bytes = max_slot_bytes();

  auto body = [&](int64_t t_begin, int64_t t_end, int slot) {
    float* a_buf = reinterpret_cast<float*>(ws + slot * slot_bytes);
    const int64_t a_buf_floats = MC_max * a_stride(KC);
    float* b_buf = a_buf + a_buf_floats;
    for (int64_t task = t_begin; task < t_end; ++task) {
      const int64_t mb = task / n_chunks, nc = task % n_chunks;
      const int64_t m0 = mb * MC, m1 = std::min(M, m0 + MC);
      const int64_t p0 = nc * panels_per_chunk, p1 = std::min(panels, p0 + panels_per_chunk);
      const WBStrategy strat =
          use_bits ? choose_bits_strategy(ks, args.bits_strategy, m1 - m0) : WBStrategy::unpack;
      // One (panel, K block) step: every row tile of the block against one B micro-panel.
      auto step = [&](int64_t p, int64_t k0, const float* a, int64_t lda) {
        const int kc = static_cast<int>(std::min<int64_t>(KC, K - k0));
        const bool last = k0 + kc == K;
        const BPanel bp = b_panel(args, strat, p, k0, kc, b_buf);
        const float* b = bp.f;
        const uint32_t* bits = bp.bits;
        static const OutputTransform identity;
        Tile tile;
        tile.ldc = args.ldc;
        tile.nr = static_cast<int>(std::min<int64_t>(kNR, N - p * kNR));
        tile.accumulate = k0 > 0;
        tile.t = last ? (args.t ? args.t : &identity) : nullptr;
        tile.n0 = p * kNR;
        for (int64_t i = m0; i < m1; i += mr) {
          tile.mr = static_cast<int>(std::min<int64_t>(mr, m1 - i));
          tile.m0 = i;
          tile.c = args.C + i * args.ldc + p * kNR;
          const float* ai = a + (i - m0) * lda;
          if (b) ks.f32(plain_a(ai, lda, kc), b, tile);
          else ks.bits(plain_a(ai, lda, kc), bits, tile);
        }
      };
      const int64_t rows = m1 - m0;
      if (args.A.conv) {
        // K blocks outside: the im2col block is built once and reused by every panel.
        const int64_t ld = a_stride(KC);
        for (int64_t k0 = 0; k0 < K; k0 += KC) {
          const int kc = static_cast<int>(std::min<int64_t>(KC, K - k0));
          im2col_block(args.A, m0, static_cast<int>(rows), k0, kc, a_buf, ld);
          for (int64_t p = p0; p < p1; ++p) step(p, k0, a_buf, ld);
        }
      } else if (!rows_alias(args.A.lda, mr)) {
        for (int64_t k0 = 0; k0 < K; k0 += KC)
          for (int64_t p = p0; p < p1; ++p) step(p, k0, args.A.a + m0 * args.A.lda + k0, args.A.lda);
      } else if (rows * a_stride(K) <= a_buf_floats) {
        // Short A (linear layers, small batches): copied whole, it stays in cache whatever the
        // order, so walk each B panel from start to end, one sequential stream per panel.
        const int64_t ld = a_stride(K);
        for (int64_t r = 0; r < rows; ++r)
          std::memcpy(a_buf + r * ld, args.A.a + (m0 + r) * args.A.lda, sizeof(float) * K);
        for (int64_t p = p0; p < p1; ++p)
          for (int64_t k0 = 0; k0 < K; k0 += KC) step(p, k0, a_buf + k0, ld);
      } else {
        const int64_t ld = a_stride(KC);
        for (int64_t k0 = 0; k0 < K; k0 += KC) {
          const int64_t kc = std::min<int64_t>(KC, K - k0);
          for (int64_t r = 0; r < rows; ++r)
            std::memcpy(a_buf + r * ld, args.A.a + (m0 + r) * args.A.lda + k0, sizeof(float) * kc);
          for (int64_t p = p0; p < p1; ++p) step(p, k0, a_buf, ld);
        }
      }
    }
  };
  // Handed over as a one-reference closure so std::function keeps it inline: run() must not
  // allocate, and a closure of every captured variable would not fit the small buffer.
  pool.parallel_for_dynamic(tasks, [&body](int64_t b, int64_t e, int slot) { body(b, e, slot); }, 1, slots);
}

}  // namespace sgemm_detail
}  // namespace hbn

// The direct conv driver: the micro-kernels read the NHWC input in place (see ARuns).
#include <algorithm>

#include "fconv/gemm_internal.h"

namespace hbn {
namespace sgemm_detail {

bool use_direct(const ASource& s, const KernelSet& ks) {
  if (!s.conv || s.algo == ConvAlgo::im2col) return false;
  if (s.algo == ConvAlgo::automatic && !prefer_direct(*s.conv)) return false;
  // A kernel row longer than this ISA's K block would not fit the per-thread B buffer of the
  // unpack strategy; such convs have many channels, where im2col is cheap anyway.
  return static_cast<int64_t>(s.conv->kernel_w) * s.conv->in_channels <= ks.kc;
}

// The direct conv: each tile is up to MR consecutive output pixels of one output row, whose
// im2col rows are the input read in place (ARuns: one run per kernel row, rows stride * IC
// floats apart). K blocks are whole kernel rows; a task is a band of output rows (x a chunk of
// panels when there are fewer bands than threads), and within it each B micro-panel serves
// every tile of the band before the next is loaded.
void run_direct(const GemmArgs& args, const KernelSet& ks, char* ws, ThreadPool& pool) {
  const ASource& s = args.A;
  const ConvGeometry& g = *s.conv;
  const int IC = g.in_channels, KH = g.kernel_h, len = g.kernel_w * IC;
  const int64_t N = args.N;
  const int64_t wp = s.in_w + 2 * g.pad_w;
  const int per_block_max = std::max(1, ks.kc / len);
  const int kblocks = (KH + per_block_max - 1) / per_block_max;
  const int per_block = (KH + kblocks - 1) / kblocks;  // balanced: 11 rows -> 4 + 4 + 3
  const int OH = s.out_h, OW = s.out_w;
  const int row_tiles = (OW + ks.mr - 1) / ks.mr;
  const int64_t panels = (N + kNR - 1) / kNR;
  const int64_t images = args.M / (static_cast<int64_t>(OH) * OW);
  const int slots = std::min(pool.num_threads(), gemm_scratch_slots());
  const bool use_bits = args.b_bits != nullptr;
  const WBStrategy strat = use_bits ? choose_bits_strategy(ks, args.bits_strategy, static_cast<int64_t>(OH) * OW)
                                    : WBStrategy::unpack;
  // Balanced bands, a multiple of the thread count when the image has the rows (71 rows on 2
  // threads: 16 bands of 4-5 rows, 36 + 35 rows, not 15 bands of 5 split 8 + 7). A decoded
  // bit panel is reused only within its band, so unpacking bands are as large as im2col's
  // row blocks (small ones ran at half speed: 3x3, 64 channels, 13x13).
  const int64_t pixels = static_cast<int64_t>(OH) * OW;
  const int64_t most_bands = use_bits && strat == WBStrategy::unpack
                                 ? std::max<int64_t>(slots, pixels / (static_cast<int64_t>(ks.mr) * ks.mc_tiles))
                                 : 8 * static_cast<int64_t>(slots);
  const int64_t n_bands = std::min<int64_t>(OH, most_bands);
  int64_t n_chunks = 1;
  if (n_bands < slots) n_chunks = std::min<int64_t>(panels, (slots + n_bands - 1) / n_bands);
  const int64_t panels_per_chunk = (panels + n_chunks - 1) / n_chunks;
  n_chunks = (panels + panels_per_chunk - 1) / panels_per_chunk;
  const int64_t tasks = n_bands * n_chunks;
  const size_t slot_bytes = max_slot_bytes();
  float* padded = reinterpret_cast<float*>(ws + static_cast<size_t>(gemm_scratch_slots()) * slot_bytes);
  const int64_t image_floats = static_cast<int64_t>(s.in_h) * s.in_w * IC;
  const bool pads = padded_image_floats(g, s.in_h, s.in_w) > 0;
  static const OutputTransform identity;

  for (int64_t img = 0; img < images; ++img) {
    const float* src = s.in + img * image_floats;
    if (pads) {
      pad_image(src, s.in_h, s.in_w, g, padded, pool);
      src = padded;
    }
    auto body = [&](int64_t t_begin, int64_t t_end, int slot) {
      float* b_buf = reinterpret_cast<float*>(ws + slot * slot_bytes);
      for (int64_t task = t_begin; task < t_end; ++task) {
        const int64_t band = task / n_chunks, chunk = task % n_chunks;
        const int64_t oh0 = band * OH / n_bands, oh1 = (band + 1) * OH / n_bands;
        const int64_t p0 = chunk * panels_per_chunk, p1 = std::min(panels, p0 + panels_per_chunk);
        for (int kb = 0; kb < kblocks; ++kb) {
          const int r0 = kb * per_block, nr = std::min(per_block, KH - r0);
          const int64_t k0 = static_cast<int64_t>(r0) * len;
          const int kc = nr * len;
          for (int64_t p = p0; p < p1; ++p) {
            const BPanel bp = b_panel(args, strat, p, k0, kc, b_buf);
            const float* b = bp.f;
            const uint32_t* bits = bp.bits;
            Tile tile;
            tile.ldc = args.ldc;
            tile.nr = static_cast<int>(std::min<int64_t>(kNR, N - p * kNR));
            tile.accumulate = kb > 0;
            tile.t = r0 + nr == KH ? (args.t ? args.t : &identity) : nullptr;
            tile.n0 = p * kNR;
            for (int64_t oh = oh0; oh < oh1; ++oh) {
              const float* row = src + ((oh * g.stride_h + r0) * wp) * IC;
              for (int i = 0; i < row_tiles; ++i) {
                // Balanced split of the output row (71 -> 6 tiles of 11-12, not 5 x 14 + 1).
                const int ow0 = static_cast<int>(static_cast<int64_t>(i) * OW / row_tiles);
                const int ow1 = static_cast<int>(static_cast<int64_t>(i + 1) * OW / row_tiles);
                tile.mr = ow1 - ow0;
                tile.m0 = (img * OH + oh) * OW + ow0;
                tile.c = args.C + tile.m0 * args.ldc + p * kNR;
                const ARuns a{row + static_cast<int64_t>(ow0) * g.stride_w * IC,
                              static_cast<int64_t>(g.stride_w) * IC, wp * IC, nr, len};
                if (b) ks.f32(a, b, tile);
                else ks.bits(a, bits, tile);
              }
            }
          }
        }
        if (args.rows_done && n_chunks == 1) (*args.rows_done)((img * OH + oh0) * OW, (img * OH + oh1) * OW);
      }
    };
    // Bands handed out one at a time: a thread the OS delays takes fewer (see the pool).
    pool.parallel_for_dynamic(tasks, [&body](int64_t b, int64_t e, int slot) { body(b, e, slot); }, 1, slots);
  }
}

}  // namespace sgemm_detail
}  // namespace hbn

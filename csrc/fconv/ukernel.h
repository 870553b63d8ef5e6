// Float GEMM micro-kernels shared by the SGEMM, the float conv and the binary-weight kernels.
//
// Every path computes one MR x 32 tile of C += A * B over a block of kc steps:
//   A: rows `lda` floats apart, each row's columns in one or more contiguous runs (ARuns: an
//      im2col block, the caller's matrix, or a conv input read in place; never transpose-packed),
//   B: either a packed float panel [kc][32] (kSgemmNR columns per row, zero-padded past N) or a
//      bit panel [kc] of uint32 whose bit j is the sign of column j (1 = -1, as in types.h).
// The B panel width is the same on every ISA so weights are packed once, whatever path later
// runs; narrower vector units (AVX2, NEON) cover the 32 columns in two 16-wide halves.
#pragma once
#include <cstdint>

#include "hbn/dispatch_rows.h"
#include "hbn/kernel_table.h"
#include "transform/output_transform.h"

namespace hbn {
namespace sgemm_detail {

constexpr int kNR = 32;

// Where a finished tile goes and what happens on the way.
struct Tile {
  float* c;                // top-left of the tile in C
  int64_t ldc;             // row stride of C
  int mr, nr;              // valid rows (<= MR) and columns (<= 32; <= kLutNR for the LUT kernel)
  bool accumulate;         // add to what C holds (a previous K block) instead of overwriting
  const OutputTransform* t;  // non-null on the last K block: apply the transform when storing
  int64_t m0, n0;          // global row / column of the tile (for pixel_scale, scale, bias)
};

// The A rows a micro-kernel reads: element (r, k) of the tile is
//   a[r * lda + (k / len) * run_stride + k % len],
// i.e. each row's kc = nruns * len columns are nruns runs of len contiguous floats. A plain
// matrix (or an im2col block) is one run. A convolution reads its NHWC input in place as one
// run per kernel row (KW * IC floats, run_stride = one image row), consecutive output pixels of
// an image row stride * IC floats apart, so the direct conv path (gemm_driver.h) copies no A.
struct ARuns {
  const float* a;
  int64_t lda;
  int64_t run_stride;
  int nruns, len;
};
// A plain row-major A: one run of kc columns.
inline ARuns plain_a(const float* a, int64_t lda, int kc) { return ARuns{a, lda, 0, 1, kc}; }

using UKernelF32 = void (*)(const ARuns& a, const float* b, const Tile& tile);
using UKernelBits = void (*)(const ARuns& a, const uint32_t* bits, const Tile& tile);

struct KernelSet {
  int mr;            // rows per micro-tile
  int mc_tiles;      // row tiles per cache block (MC = mr * mc_tiles)
  int kc;            // K block length
  UKernelF32 f32;    // float B panel
  UKernelBits bits;  // bit B panel (sign decoded in registers), or null if the path has none
  // The automatic WeightBin strategy decodes in registers only for blocks of at most one row
  // tile on this path (choose_bits_strategy, wbconv/wb_strategy.cc).
  bool unpack_tall_blocks = false;
};

// The micro-kernel table (ukernel.cc): one row per compiled path, best first.
const KernelTable<KernelSet>& sgemm_kernels();
// The kernel set dispatch uses now.
inline const KernelSet& active_kernels() { return *sgemm_kernels().select(); }

// The scalar store: the tile's accumulators, spilled to acc[MR][32], are merged into C element
// by element with the scalar transform definition. The scalar path stores every tile this way,
// AVX2 and NEON only their partial (nr < 32) tiles; AVX-512 stores partial tiles with masks.
void store_tile_scalar(const float* acc, int acc_ld, const Tile& tile);

}  // namespace sgemm_detail
}  // namespace hbn

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
#include <type_traits>

#include "hbn/isa.h"
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

// Table-lookup binary-weight kernel (AVX-512 and AVX2). For +-1 weights, the dot product of a
// row with a column over G consecutive k is one of 2^G signed sums of those G inputs, fixed by
// the column's G sign bits. Per row and group the kernel builds the 2^G sums once (G FMAs into
// one register) and then serves a vector of columns per permute + add (vpermps picks each
// lane's sum by its pattern): AVX-512 (G = 4, 16 lanes): 2 ops per 64 MACs instead of 4 FMAs,
// on pipes the FMAs leave idle: 2.4x the FMA kernel, 2x the FMA peak; AVX2 (G = 3, 8 lanes):
// 2 ops per 24 MACs instead of 3 FMAs (measured rates in gemm_driver.cc).
// B is a LUT panel of LutLayout::nr columns: for each word step of LutLayout::kstep() = 8G k,
// nr / lanes vectors of `lanes` uint32; lane c of vector j holds, in nibble q, the sign bits
// (bit i = k kstep*o + G*q + i, 1 = -1) of column lanes*j + c. vpermps reads only an index's
// low bits, so a shift picks the nibble and the panel costs 32/(8G) words per 32 weights
// (1 bit per weight for G = 4).
// Tile: mr <= LutLayout::mr rows, nr <= LutLayout::nr columns; a: plain rows (lda), kc columns
// (kc a multiple of kstep except in the last K block; missing inputs count as 0).
struct LutLayout {
  int nr;     // columns per panel
  int mr;     // rows per tile
  int group;  // inputs per table (G)
  int kstep() const { return 8 * group; }  // k covered by one panel word (8 nibbles)
};
using UKernelLut = void (*)(const float* a, int64_t lda, int kc, const uint32_t* lut_panel,
                            const Tile& tile);

struct KernelSet {
  Isa isa;
  int mr;            // rows per micro-tile
  int mc_tiles;      // row tiles per cache block (MC = mr * mc_tiles)
  int kc;            // K block length
  UKernelF32 f32;    // float B panel
  UKernelBits bits;  // bit B panel (sign decoded in registers), or null if the path has none
  UKernelLut lut;    // LUT panel (see UKernelLut), or null
  LutLayout lut_layout;  // the panel layout lut reads
};

// The kernel set of a compiled path (isa must be supported by the build).
const KernelSet& kernels_for(Isa isa);
inline const KernelSet& active_kernels() { return kernels_for(active_isa()); }

const KernelSet& scalar_kernels();
#if defined(HBN_X86)
const KernelSet& avx2_kernels();
const KernelSet& avx512_kernels();
#endif
#if defined(HBN_ARM64)
const KernelSet& neon_kernels();
#endif

// Calls f(std::integral_constant<int, R>{}) for R = rows clamped to [1, MaxR], so each ISA
// instantiates its tile once per row count and picks it at run time (a tile's rows are <= MR).
template <int MaxR, int R = 1, typename F>
inline void dispatch_rows(int rows, F&& f) {
  if constexpr (R >= MaxR) {
    f(std::integral_constant<int, MaxR>{});
  } else {
    if (rows <= R) return f(std::integral_constant<int, R>{});
    dispatch_rows<MaxR, R + 1>(rows, f);
  }
}

// The scalar store: the tile's accumulators, spilled to acc[MR][32], are merged into C element
// by element with the scalar transform definition. The scalar and NEON paths store every tile
// this way, AVX2 only its partial (nr < 32) tiles; AVX-512 stores partial tiles with masks.
void store_tile_scalar(const float* acc, int acc_ld, const Tile& tile);

}  // namespace sgemm_detail
}  // namespace hbn

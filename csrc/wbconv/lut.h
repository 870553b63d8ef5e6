// The table-lookup WeightBin kernels (float activations x +-1 weights), their panel layout,
// their table and their driver.
#pragma once
#include <cstdint>

#include "fconv/gemm_driver.h"
#include "fconv/ukernel.h"
#include "hbn/kernel_table.h"
#include "hbn/threadpool.h"

namespace hbn {
namespace sgemm_detail {

// Table-lookup binary-weight kernel (AVX-512 and AVX2; NEON's puts pixels in the lanes instead,
// lut_neon.cc). For +-1 weights, the dot product of a
// row with a column over G consecutive k is one of 2^G signed sums of those G inputs, fixed by
// the column's G sign bits. Per row and group the kernel builds the 2^G sums once (G FMAs into
// one register) and then serves a vector of columns per permute + add (vpermps picks each
// lane's sum by its pattern): AVX-512 (G = 4, 16 lanes): 2 ops per 64 MACs instead of 4 FMAs,
// on pipes the FMAs leave idle: 2.4x the FMA kernel, 2x the FMA peak; AVX2 (G = 3, 8 lanes):
// 2 ops per 24 MACs instead of 3 FMAs (measured rates in lut_driver.cc).
// B is a LUT panel of LutLayout::nr columns: for each word step of LutLayout::kstep() = 8G k,
// nr / lanes vectors of `lanes` uint32; lane c of vector j holds, in nibble q, the sign bits
// (bit i = k kstep*o + G*q + i, 1 = -1) of column lanes*j + c. vpermps reads only an index's
// low bits, so a shift picks the nibble and the panel costs 32/(8G) words per 32 weights
// (1 bit per weight for G = 4).
// Tile: mr <= LutLayout::mr rows, nr <= LutLayout::nr columns; a: plain rows (lda), kc columns
// (kc a multiple of kstep except in the last K block; missing inputs count as 0).
// NEON's kernel (lut_neon.cc) reads index bytes instead (index_bytes): its panel is
// [ceil(N/nr)][ceil(K/G)][nr] bytes, byte (g, c) = 16 x the pattern of column c in group g (the
// table entry's byte offset); in uint32 words that is the same [panel][word step][nr] shape with
// a word step of 4 groups, so the driver's offsets hold for both (2 bits per weight for G = 4).
struct LutLayout {
  int nr;     // columns per panel
  int mr;     // rows per tile
  int group;  // inputs per table (G)
  bool index_bytes = false;  // byte indices (NEON) instead of nibbles
  int kstep() const { return (index_bytes ? 4 : 8) * group; }  // k covered by one panel word
};
using UKernelLut = void (*)(const float* a, int64_t lda, int kc, const uint32_t* lut_panel,
                            const Tile& tile);


struct LutKernel {
  UKernelLut fn;
  LutLayout layout;
  // Taken automatically whatever the row count; otherwise only for GEMMs of fewer rows than
  // one FMA tile, where the FMA tiles are short (prefer_lut, wb_strategy.cc).
  bool always;
};

// One row per compiled LUT kernel, best first (lut_table.cc). No portable row: where none
// qualifies the WeightBin conv decodes signs for the FMA kernels instead.
const KernelTable<LutKernel>& lut_kernels();

// Row tiles of lut.layout.mr rows against LUT panels (args.b_lut, packed for `lut`), with
// ks's blocking (lut_driver.cc). ws: the aligned GEMM workspace.
void run_lut(const GemmArgs& args, const LutKernel& lut, const KernelSet& ks, char* ws, ThreadPool& pool);

}  // namespace sgemm_detail
}  // namespace hbn

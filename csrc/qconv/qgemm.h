// The qgemm kernel family: integer GEMM micro-kernels for the 8-bit convolution (conv_q8).
//   D[m][j] = sum_k a[m][k] * w[j][k]      a uint8, w int8, D int32 (exact)
// A is row-major uint8 (the im2col rows of a quantized NHWC image, or a flat value's rows),
// `lda` bytes apart, each row K4 = round_up(K, 4) bytes. B is packed once into panels of
// kQNR = 16 output channels: panel[g][j][t] = w[j][4g + t] (groups of 4 consecutive k, the
// operand shape of VPDPBUSD / SDOT lanes), zero past K and past OC. Every row uses this one
// layout, so a packed layer runs on whichever row dispatch picks.
//
// A row returns the raw dot D over K4; the caller (qconv.cc) subtracts the zero point
// (in_zero * sum_k w[j][k]) and applies the output transform, identically for every row, so
// rows agree bit-exactly as long as their D does.
//
// Exactness bound: |a * w| <= 255 * 127, so D and every partial sum fit in int32 whenever
// K4 <= kQMaxK (= 65536): 255 * 127 * 65536 < 2^31. conv_q8 rejects larger receptive fields.
#pragma once
#include <cstddef>
#include <cstdint>

#include "hbn/kernel_table.h"

namespace hbn {
namespace qgemm {

constexpr int kQNR = 16;               // output channels per panel
constexpr int kQKGroup = 4;            // k per group (4 bytes: one 32-bit lane)
constexpr int64_t kQMaxK = 65536;      // largest K4 with exact int32 accumulation
constexpr int kQMaxMR = 16;            // no row's tile is taller

// One micro-tile: `rows` (1..mr) rows of A times one panel. acc is [rows][kQNR] int32.
// wsum[j] = sum_k w[j][k] of this panel (rows that shift A to int8 use it to add back).
// Reads exactly K4 bytes of each A row (no over-read), k4 a multiple of 4.
using QTileFn = void (*)(const uint8_t* a, int64_t lda, int rows, const int8_t* panel, int64_t k4,
                         const int32_t* wsum, int32_t* acc);

// The float output stage of one panel's tile, prepared per panel by the driver (qconv.cc).
struct QStore {
  const int32_t* zc;   // [kQNR] in_zero * sum_k w[j][k] (mod 2^32)
  const float* scale;  // [kQNR] the transform's scale (1 where it has none)
  const float* bias;   // [kQNR] the transform's bias (-0 where it has none)
  bool relu;
  const float* thr = nullptr;  // [kQNR] bit output: thresholds (store_bits only)
  uint32_t flip = 0;           // bit j: channel j compares y > thr (else y < thr)
};
// rows x jn outputs of acc [rows][kQNR] to y (row stride ldy floats): apply_transform of
// acc - zc, bit for bit (qgemm_rows.h).
using QStoreFn = void (*)(const int32_t* acc, int rows, int jn, const QStore& s, float* y, int64_t ldy);
// The packed-bit output stage: bits[r] bit j = threshold_bit(apply_transform(acc[r][j] - zc[j]))
// for j < jn, i.e. flip ? y > thr[j] : y < thr[j] on the float y store computes (NaN compares
// false), 0 for j >= jn. One 16-bit mask per row; the driver shifts it into the channel word.
using QStoreBitsFn = void (*)(const int32_t* acc, int rows, int jn, const QStore& s, uint16_t* bits);
// quantize_rows (qconv.h) with the row's instruction set.
using QQuantizeFn = void (*)(const float* x, int64_t count, float in_scale, int in_zero, uint8_t* q);

// The direct conv's A (QConv2d's direct path, no im2col copy): the rows of a tile are output
// pixels of one output row, `lda` bytes apart in the bordered image (stride_w * IC). The
// receptive field is k4 / 4 groups of 4 consecutive k: the first k4 / 4 - tgroups (the body)
// read from the image, group g the 4 bytes at koff[g] past the pixel; the last tgroups (the
// tail) read contiguously from a second buffer, group i of row r the 4 bytes at t + r * ldt + 4i.
// Body: kernel row kh's first `brun` values (brun a multiple of 4) at koff[kh * brun / 4 + u]
// = kh * (padded image row bytes) + 4u. Tail: the rest of every kernel row (r = KW * IC - brun
// values each), gathered per output pixel column so that the KH pieces of a pixel lie one after
// another (QConv2d builds it per run); without a tail (tgroups = 0) brun is KW * IC rounded up
// to 4. Bytes past the real values meet zero weights (they are the next pixel's or the buffer's
// slack: read, never counted). The panels are packed in the same k order.
struct QRuns {
  const uint8_t* a;
  int64_t lda;
  const int32_t* koff;  // [k4 / 4 - tgroups]
  const uint8_t* t = nullptr;
  int64_t ldt = 0;
  int64_t tgroups = 0;
};
// rows (1..direct_mr) x np (1..direct_np) adjacent panels (panel + i * k4 * kQNR, wsum + i *
// kQNR): acc [np][kQMaxMR][kQNR], D over the receptive field as QTileFn's over K4.
using QDirectFn = void (*)(const QRuns& a, int rows, int np, const int8_t* panel, int64_t k4, const int32_t* wsum,
                           int32_t* acc);
constexpr int kQMaxNP = 4;  // no direct tile spans more panels
// The same tile with the float output stage applied in registers (store_rows_impl's operations,
// bit for bit): np full panels (16 channels each), st[i] panel i's stage, output rows of y
// `ldy` floats apart, panel i at y + 16 i.
using QDirectStoreFn = void (*)(const QRuns& a, int rows, int np, const int8_t* panel, int64_t k4,
                                const QStore* st, float* y, int64_t ldy);

// The same tile with the packed-bit output stage in registers (store_bits's operations, bit for
// bit): np panels, the 16-bit mask of row r and panel i stored little-endian at bits + r * ldb +
// 2i (a pixel's packed words, written in place). Channels past OC must get NaN thresholds (the
// compare is false, so their bits are 0 without a mask).
using QDirectBitsFn = void (*)(const QRuns& a, int rows, int np, const int8_t* panel, int64_t k4,
                               const QStore* st, uint8_t* bits, int64_t ldb);

struct QKernel {
  int mr;        // rows per tile
  QTileFn tile;
  // Optional: two adjacent panels at once (panel and panel + k4 * kQNR; wsum of both), acc
  // [2][kQMaxMR][kQNR] (the second panel's tile at acc + kQMaxMR * kQNR). Null: one at a time.
  QTileFn tile2;
  QStoreFn store;
  QQuantizeFn quantize;
  QStoreBitsFn store_bits;
  // Optional: the direct conv tile (rows without it run every conv through im2col blocks), its
  // most rows and panels per call.
  QDirectFn direct = nullptr;
  int direct_mr = 0;
  int direct_np = 0;
  QDirectStoreFn direct_store = nullptr;  // optional (else direct + store)
  QDirectBitsFn direct_bits = nullptr;    // optional (else direct + store_bits)
};

// The table (qgemm_table.cc): avx512vnni, avxvnni, avx2, dotprod, neon, scalar.
const KernelTable<QKernel>& qgemm_kernels();
inline const QKernel& active_qkernel() { return *qgemm_kernels().select(); }

// The scalar reference (qgemm.cc): the definition every row is checked against.
void tile_scalar(const uint8_t* a, int64_t lda, int rows, const int8_t* panel, int64_t k4,
                 const int32_t* wsum, int32_t* acc);
void store_bits_scalar(const int32_t* acc, int rows, int jn, const QStore& s, uint16_t* bits);
void direct_scalar(const QRuns& a, int rows, int np, const int8_t* panel, int64_t k4, const int32_t* wsum,
                   int32_t* acc);

// Row factories (one per ISA translation unit).
QKernel qkernel_scalar();
#if defined(HBN_X86)
QKernel qkernel_avx2();
QKernel qkernel_avxvnni();
QKernel qkernel_avx512vnni();
#endif
#if defined(HBN_ARM64)
QKernel qkernel_neon();
QKernel qkernel_dotprod();
#endif

}  // namespace qgemm
}  // namespace hbn

// Internal to the GEMM drivers (gemm_driver.cc, gemm_blocked.cc, gemm_direct.cc,
// wbconv/lut_driver.cc): the pieces they share.
#pragma once
#include <cstddef>
#include <cstdint>

#include "fconv/gemm_driver.h"
#include "wbconv/wb_strategy.h"

namespace hbn {
namespace sgemm_detail {

// Row stride of an A block copied into the workspace: a multiple of 16 floats plus 16, so the
// MR rows a micro-kernel reads together fall in different L1 sets. Read in place, a matrix whose
// rows are a multiple of 4 KiB apart (K = 1024, 4096, 9216, ...) puts all of them in one set
// and thrashes L1 on every k step (measured: fc 9216->4096 batch 16 ran at a third of peak).
constexpr int64_t a_stride(int64_t k) { return (k + 15) / 16 * 16 + 16; }

// True when MR rows `lda` floats apart crowd into few L1 sets (the 4 KiB case above). Then
// the A block is copied to a_stride rows; otherwise it is read in place, which saves a copy
// per element that matters when N is small (a 1x1 conv with 64 outputs reuses A only 64x).
inline bool rows_alias(int64_t lda, int mr) {
  constexpr int kSets = 64, kLine = 64;
  int count[kSets] = {};
  for (int r = 0; r < mr; ++r)
    if (++count[(r * lda * static_cast<int64_t>(sizeof(float)) / kLine) % kSets] > 2) return true;
  return false;
}

constexpr size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

// Bytes of one thread's scratch slot: enough for the A and B buffers of any kernel set.
size_t max_slot_bytes();

// Materialises rows [m0, m0 + rows) x columns [k0, k0 + kc) of the implicit im2col matrix into
// dst (row-major, row stride ld). k runs (kh, kw, ic) with ic fastest, so for one kh the taps
// whose columns are inside the image are one contiguous run of the NHWC input (KW * IC floats
// when nothing is clipped: one copy, not KW), and taps in the zero padding become zeros.
void im2col_block(const ASource& s, int64_t m0, int rows, int64_t k0, int kc, float* dst, int64_t ld);

// Decodes a bit panel (bit j of word k = sign of column j, 1 = -1) into a float panel [kc][32].
void unpack_bits_panel(const uint32_t* bits, int kc, float* dst);

// How a GEMM of M rows and `panels` column panels is cut into tasks for `slots` threads: row
// blocks of MC rows (at most MC_max, a multiple of tile_rows, so every tile but the last is
// full and results do not depend on the thread count) times chunks of per_chunk panels.
struct WorkSplit {
  int64_t MC, m_blocks, per_chunk, n_chunks;
  int64_t tasks() const { return m_blocks * n_chunks; }
};
WorkSplit split_work(int64_t M, int64_t panels, int64_t MC_max, int tile_rows, int slots);

// The B micro-panel of column panel p, K block [k0, k0 + kc), as the micro-kernel takes it:
// packed floats, a bit panel decoded into b_buf (unpack), or the bits themselves (direct).
struct BPanel {
  const float* f = nullptr;
  const uint32_t* bits = nullptr;
};
BPanel b_panel(const GemmArgs& args, WBStrategy strat, int64_t p, int64_t k0, int kc, float* b_buf);

// Floats of the zero-padded image copy the direct path reads (0 when the conv does not pad).
int64_t padded_image_floats(const ConvGeometry& g, int in_h, int in_w);
// Copies one NHWC image into the centre of a zeroed (in_h + 2ph) x (in_w + 2pw) image.
void pad_image(const float* in, int in_h, int in_w, const ConvGeometry& g, float* out, ThreadPool& pool);

// The drivers; ws is the caller's workspace, aligned.
bool use_direct(const ASource& s, const KernelSet& ks);
void run_direct(const GemmArgs& args, const KernelSet& ks, char* ws, ThreadPool& pool);
void run_blocked(const GemmArgs& args, const KernelSet& ks, char* ws, ThreadPool& pool);

}  // namespace sgemm_detail
}  // namespace hbn

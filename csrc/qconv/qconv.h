// QConv2d: the 8-bit convolution behind conv_q8 (also Linear layers: a 1x1 conv on a flat value).
//   q   = clamp(nearbyint(x / in_scale) + in_zero, 0, 255)   (uint8; NaN -> 0)
//   acc = sum (q - in_zero) * w                               (int32, exact; padded taps are
//                                                               q = in_zero, i.e. a real 0)
//   y   = transform(acc)                                      (OutputTransform: the caller's
//                                                               scale = in_scale * w_scale * BN)
// Two steps, so an input that is already uint8 skips the first: quantize_rows() turns float NHWC
// rows into uint8 (written straight into the zero-point-bordered image the GEMM reads), and
// run_u8() / run_u8_bits() take uint8 NHWC. run() / run_bits() do both.
// The GEMM is qgemm (qgemm.h): weights packed once into 16-channel panels. A is read in one of
// three ways: a 1x1 stride-1 unpadded conv whose channel count is a multiple of 4 reads its
// input in place; other convs, on rows with a direct tile (x86 VNNI, scalar), read the
// bordered image in place through per-group offsets (qgemm::QRuns: each kernel row's KW * IC
// values rounded down to 4, the rest gathered into a small tail buffer per run, or rounded up
// with zero weights on the extra bytes); otherwise (NEON, AVX2) im2col rows
// are materialised one block at a time per thread.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "hbn/conv_geometry.h"
#include "hbn/threadpool.h"
#include "hbn/types.h"
#include "qconv/qgemm.h"
#include "transform/output_transform.h"

namespace hbn {

// q[i] = clamp(nearbyint(x[i] / in_scale) + in_zero, 0, 255), NaN -> 0; `in_scale` is used as a
// float (the division is a float32 division, rounding half to even). Runs the active qgemm
// row's vectorised copy (every row computes the same bytes).
void quantize_rows(const float* x, int64_t count, float in_scale, int in_zero, uint8_t* q);

class QConv2d {
 public:
  // weight: int8 [OC][IC][KH][KW] (PyTorch order), values in -127..127 (the caller checks).
  // Throws std::invalid_argument for an invalid geometry or K = IC*KH*KW over qgemm::kQMaxK.
  QConv2d(const ConvGeometry& g, const int8_t* weight, float in_scale, int in_zero);

  const ConvGeometry& geometry() const { return g_; }
  int64_t k() const { return k_; }    // IC * KH * KW
  int64_t k4() const { return k4_; }  // rounded up to a multiple of 4

  // The A source: the direct path (QRuns tiles reading the bordered image in place) is taken
  // for shapes prefers_direct() accepts on rows that have a direct tile; `automatic` also
  // needs an output row at least half a tile wide. Tests and benchmarks force either.
  enum class Path { automatic, im2col, direct };
  void set_path(Path p) { path_ = p; }
  bool prefers_direct() const;
  bool uses_direct(int in_w) const;  // with the active qgemm row
  // The direct path's K (a multiple of 4) and how many of its groups are tail groups (QRuns).
  int64_t direct_k4() const { return dk4_; }
  int64_t direct_tail_groups() const { return tgroups_; }

  // Called with ranges [m0, m1) of output pixels (rows of y) as they become final, from the
  // thread that finished them, each at most once (possibly never: the caller does the rest
  // after the run). Float output only.
  using RowsDone = std::function<void(int64_t, int64_t)>;

  // Workspace for a run of n images of in_h x in_w (float or uint8 input alike).
  size_t workspace_bytes(int n, int in_h, int in_w) const;

  // Float NHWC input [n][in_h][in_w][IC] -> float NHWC output [n][OH][OW][OC].
  void run(const float* x, int n, int in_h, int in_w, const OutputTransform& t, float* y,
           void* ws, ThreadPool& pool, const RowsDone* rows_done = nullptr) const;
  // The same with packed-bit output (t.out_threshold set): words_for(OC) words per pixel.
  void run_bits(const float* x, int n, int in_h, int in_w, const OutputTransform& t, word_t* y,
                void* ws, ThreadPool& pool) const;
  // uint8 input (already quantized with this layer's in_scale / in_zero).
  void run_u8(const uint8_t* q, int n, int in_h, int in_w, const OutputTransform& t, float* y,
              void* ws, ThreadPool& pool, const RowsDone* rows_done = nullptr) const;
  void run_u8_bits(const uint8_t* q, int n, int in_h, int in_w, const OutputTransform& t,
                   word_t* y, void* ws, ThreadPool& pool) const;
  // The exact int32 accumulators acc[m][oc] (tests and benchmarks).
  void run_acc(const uint8_t* q, int n, int in_h, int in_w, int32_t* acc, void* ws,
               ThreadPool& pool) const;

 private:
  struct Out;
  const uint8_t* border(const uint8_t* q, int n, int in_h, int in_w, uint8_t* img) const;
  const uint8_t* quantize_input(const float* x, int n, int in_h, int in_w, uint8_t* img) const;
  // The image (quantized from x, or the caller's uint8 q bordered) first in the workspace, then
  // the GEMM on it with the workspace after it. Exactly one of x, q is non-null.
  void run_out(const float* x, const uint8_t* q, int n, int in_h, int in_w, const Out& o, void* ws,
               ThreadPool& pool) const;
  struct PanelOut;
  void setup_panel(const Out& out, int64_t p, PanelOut& po) const;
  static qgemm::QStore store_of(const Out& out, const PanelOut& po);
  static void emit_panel(const qgemm::QKernel& kern, const Out& out, const PanelOut& po, const int32_t* tacc,
                         int mr, int64_t m1, int OC, word_t* bitrow);
  void gemm(const uint8_t* img, int n, int in_h, int in_w, const Out& out, const PanelOut* pos, uint8_t* ws,
            ThreadPool& pool, const RowsDone* rows_done) const;
  void gemm_direct(const uint8_t* img, int n, int in_h, int in_w, const Out& out, const PanelOut* pos,
                   uint8_t* ws, ThreadPool& pool, const RowsDone* rows_done) const;
  size_t panel_out_bytes() const;
  size_t image_bytes(int n, int in_h, int in_w) const;
  size_t tail_bytes(int n, int in_h, int in_w) const;
  bool reads_in_place() const;
  int block_rows() const;
  size_t slot_bytes() const;

  ConvGeometry g_;
  float in_scale_;
  int in_zero_;
  int64_t k_ = 0, k4_ = 0, panels_ = 0;
  std::vector<int8_t> packed_;    // [panels][k4 / 4][16][4]
  std::vector<int32_t> wsum_;     // [panels * 16]
  std::vector<int32_t> zcorr_;    // [panels * 16]: in_zero * wsum, mod 2^32: in_zero * wsum
  // Direct path (qgemm::QRuns): per kernel row, brun values read in place (a multiple of 4) and
  // trun in the tail, tgroups tail groups in all; dk4 = KH * brun + 4 * tgroups.
  int64_t brun_ = 0, trun_ = 0, tgroups_ = 0, dk4_ = 0;
  bool direct_ok_ = false;        // prefers_direct()
  std::vector<int8_t> dpacked_;   // direct path: [panels][dk4 / 4][16][4]; empty if packed_ is that
  Path path_ = Path::automatic;
};

}  // namespace hbn

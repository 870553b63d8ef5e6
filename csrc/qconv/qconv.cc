#include "qconv/qconv.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <thread>

#include "qconv/qgemm.h"

namespace hbn {

using qgemm::kQKGroup;
using qgemm::kQNR;

namespace {

constexpr size_t kAlign = kAlignment;
size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

// Per-thread scratch slots: runs never use more threads than this, so workspace_bytes() need
// not know the pool (as gemm_scratch_slots() in fconv).
int scratch_slots() {
  static const int slots = std::max(8, static_cast<int>(std::thread::hardware_concurrency()));
  return slots;
}

// Output channels per task: one packed-bit word, so bit outputs never share a word.
constexpr int kPanelsPerTask = kWordBits / kQNR;

// Copies a run (a kernel row of the receptive field: 33 bytes for 11x11 RGB) in whole 16-byte
// moves, reading and writing up to kRunSlack bytes past its end: runs are written in order, so
// the next run overwrites the excess, and both buffers carry the slack (the image and the im2col
// block are the workspace's). A library memcpy per run cost as much as the GEMM on ResNet-18's
// conv1 (21-byte runs).
constexpr int kRunSlack = 16;
static_assert(kRunSlack <= static_cast<int>(kOverReadBytes), "the image buffer carries kOverReadBytes of slack");
inline void copy_run(uint8_t* dst, const uint8_t* src, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) std::memcpy(dst + i, src + i, 16);
}

// The direct path's tail buffer for one image (qgemm::QRuns): for each of `cols` output columns
// (`col` bytes apart in the bordered image, from `src`: the first byte past the body of the
// column's first kernel row), the `trun` bytes of each of `rows` padded rows (`row` bytes
// apart), one after another. A strided gather of 1-3 bytes per element, one load and one store
// each (a library memcpy per element, or a byte loop, cost more than the groups it saves on
// 15x15x1; with the loop's bounds reloaded after every byte store, as they were inside
// gemm_direct, it took 4% of ResNet-18's conv1). Row by row: the image read in order, the
// writes `rows * trun` bytes apart in a buffer that stays in L1 (25 KB on ResNet-18's conv1;
// column by column read the 158 KB image 230 times). Two or three bytes move as 4 except in
// the last row: the extra byte read is the next pixel's (or the image's slack), the extra byte
// written the next row's, which is written after it.
void gather_tails(const uint8_t* src, int64_t row, int64_t col, int64_t cols, int64_t rows, int64_t trun,
                  uint8_t* dst) {
  const int64_t ld = rows * trun;
  for (int64_t y = 0; y < rows; ++y, src += row) {
    const uint8_t* s = src;
    uint8_t* d = dst + y * trun;
    if (trun == 1) {  // the common case: 3 channels, an odd kernel width
      for (int64_t c = 0; c < cols; ++c, s += col, d += ld) *d = *s;
    } else if (y + 1 < rows) {
      for (int64_t c = 0; c < cols; ++c, s += col, d += ld) std::memcpy(d, s, kQKGroup);
    } else {  // the last row: 4 bytes would overwrite the next column's first row
      for (int64_t c = 0; c < cols; ++c, s += col, d += ld)
        for (int64_t i = 0; i < trun; ++i) d[i] = s[i];
    }
  }
}

}  // namespace

// A panel's output stage: its transform as 16 full lanes (1 / -0 where absent: the values
// apply_transform leaves unchanged), prepared once per run.
struct QConv2d::PanelOut {
  int64_t oc0;
  int jn;
  const int32_t* zc;
  float scale16[kQNR], bias16[kQNR];
  float thr16[kQNR];  // bit output: thresholds (NaN past jn: compared false, those bits are 0)
  uint32_t flip;      // bit j: channel oc0 + j flipped
};

void quantize_rows(const float* x, int64_t count, float in_scale, int in_zero, uint8_t* q) {
  qgemm::active_qkernel().quantize(x, count, in_scale, in_zero, q);
}

struct QConv2d::Out {
  const OutputTransform* t = nullptr;
  float* y = nullptr;       // float output, or
  word_t* bits = nullptr;   // packed-bit output, or
  int32_t* acc = nullptr;   // raw accumulators (in_zero subtracted, no transform)
  const RowsDone* rows_done = nullptr;
};

QConv2d::QConv2d(const ConvGeometry& g, const int8_t* weight, float in_scale, int in_zero)
    : g_(g), in_scale_(in_scale), in_zero_(in_zero) {
  if (!g.valid()) throw std::invalid_argument("QConv2d: invalid geometry");
  if (in_zero < 0 || in_zero > 255) throw std::invalid_argument("QConv2d: in_zero must be 0..255");
  k_ = int64_t(g.in_channels) * g.kernel_h * g.kernel_w;
  k4_ = (k_ + kQKGroup - 1) / kQKGroup * kQKGroup;
  if (k4_ > qgemm::kQMaxK)
    throw std::invalid_argument("QConv2d: receptive field of " + std::to_string(k_) +
                                " values exceeds " + std::to_string(qgemm::kQMaxK) +
                                " (int32 accumulation would not be exact)");
  panels_ = (g.out_channels + kQNR - 1) / kQNR;
  packed_.assign(static_cast<size_t>(panels_ * k4_ * kQNR), 0);
  wsum_.assign(static_cast<size_t>(panels_ * kQNR), 0);
  zcorr_.assign(wsum_.size(), 0);
  const int IC = g.in_channels, KH = g.kernel_h, KW = g.kernel_w;
  for (int oc = 0; oc < g.out_channels; ++oc) {
    const int64_t p = oc / kQNR, j = oc % kQNR;
    int8_t* panel = packed_.data() + p * k4_ * kQNR;
    int32_t s = 0;
    for (int kh = 0; kh < KH; ++kh)
      for (int kw = 0; kw < KW; ++kw)
        for (int ic = 0; ic < IC; ++ic) {
          // k runs over the NHWC receptive field: (kh * KW + kw) * IC + ic.
          const int64_t k = (int64_t(kh) * KW + kw) * IC + ic;
          const int8_t w = weight[((int64_t(oc) * IC + ic) * KH + kh) * KW + kw];
          panel[(k / kQKGroup) * kQNR * kQKGroup + j * kQKGroup + k % kQKGroup] = w;
          s += w;
        }
    wsum_[static_cast<size_t>(oc)] = s;
    zcorr_[static_cast<size_t>(oc)] = static_cast<int32_t>(static_cast<uint32_t>(in_zero) * static_cast<uint32_t>(s));
  }
  // The direct path's k order (qgemm::QRuns). A kernel row of run = KW * IC values whose
  // length is not a multiple of 4 either pads to 4 (brun = run rounded up, no tail: zero weights
  // on the extra bytes) or splits into a body of its first brun = run rounded down values, read
  // in place, and a tail of the other r = run - brun, the KH tails of a pixel gathered one after
  // another per run (ceil(KH * r / 4) groups). The split is taken when it executes fewer groups:
  // 7x7x3 runs 35 + 2 = 37 groups instead of 42 (14% of the padded ones were zero weights),
  // 11x11x3 88 + 3 instead of 99, 3x3x3 6 + 1 instead of 9; never for one kernel row.
  const int64_t run = int64_t(KW) * IC, r = run % kQKGroup;
  const int64_t split_groups = KH * (run / kQKGroup) + (KH * r + kQKGroup - 1) / kQKGroup;
  const int64_t pad_groups = KH * ((run + kQKGroup - 1) / kQKGroup);
  if (r != 0 && split_groups < pad_groups) {
    brun_ = run - r;
    trun_ = r;
    tgroups_ = (KH * r + kQKGroup - 1) / kQKGroup;
  } else {
    brun_ = (run + kQKGroup - 1) / kQKGroup * kQKGroup;
    trun_ = tgroups_ = 0;
  }
  dk4_ = brun_ * KH + tgroups_ * kQKGroup;
  direct_ok_ = prefers_direct();
  // A kernel row of a multiple of 4 values: the two layouts are the same bytes.
  if (!direct_ok_ || brun_ == run) return;
  dpacked_.assign(static_cast<size_t>(panels_ * dk4_ * kQNR), 0);
  for (int oc = 0; oc < g.out_channels; ++oc) {
    int8_t* panel = dpacked_.data() + (oc / kQNR) * dk4_ * kQNR;
    const int j = oc % kQNR;
    for (int kh = 0; kh < KH; ++kh)
      for (int kw = 0; kw < KW; ++kw)
        for (int ic = 0; ic < IC; ++ic) {
          const int64_t v = int64_t(kw) * IC + ic;  // position in the kernel row's run
          const int64_t k = v < brun_ ? kh * brun_ + v : KH * brun_ + kh * trun_ + (v - brun_);
          panel[(k / kQKGroup) * kQNR * kQKGroup + j * kQKGroup + k % kQKGroup] =
              weight[((int64_t(oc) * IC + ic) * KH + kh) * KW + kw];
        }
  }
}

// The shape rule for the direct path (measured in docs/kernels.md, "8-bit conv": faster than
// im2col blocks on every shape tried on avx512vnni, 3x3 to 15x15, 1 to 128 channels): any conv
// not read in place whose direct K (brun, tail groups) adds at most a third to K4. With the
// body / tail split that K is K4 for every shape (the padded layout is kept only where it
// executes as many groups); the bound guards the layout choice above.
bool QConv2d::prefers_direct() const {
  if (reads_in_place() || dk4_ > qgemm::kQMaxK) return false;
  return (dk4_ - k4_) * 3 <= k4_;
}

bool QConv2d::uses_direct(int in_w) const {
  if (!direct_ok_ || path_ == Path::im2col || !qgemm::active_qkernel().direct) return false;
  // The group offsets are int32: the last kernel row's must fit.
  const int64_t row_bytes = (int64_t(in_w) + 2 * g_.pad_w) * g_.in_channels;
  if ((g_.kernel_h - 1) * row_bytes + brun_ > INT32_MAX) return false;
  // Tiles cannot cross an output row: rows much narrower than a tile leave the kernel idle
  // (avxvnni, 6-pixel tiles: 12% slower than im2col at 7 pixels, which still passes).
  return path_ == Path::direct || g_.out_w(in_w) * 2 >= qgemm::active_qkernel().direct_mr;
}

bool QConv2d::reads_in_place() const {
  return g_.kernel_h == 1 && g_.kernel_w == 1 && g_.stride_h == 1 && g_.stride_w == 1 && g_.pad_h == 0 &&
         g_.pad_w == 0 && g_.in_channels % kQKGroup == 0;
}

// Rows of A per block: about 32 KB of im2col (L1-resident while every panel passes over it),
// a multiple of every row's tile height (12, 6, 4, 2), at least one tile.
int QConv2d::block_rows() const {
  int64_t rows = 32768 / std::max<int64_t>(k4_, 1);
  rows = std::max<int64_t>(12, std::min<int64_t>(96, rows / 12 * 12));
  return static_cast<int>(rows);
}

size_t QConv2d::slot_bytes() const {
  const size_t a = reads_in_place() ? 0 : round_up(static_cast<size_t>(block_rows() * k4_) + kRunSlack, kAlign);
  const size_t acc = round_up(sizeof(int32_t) * qgemm::kQMaxNP * qgemm::kQMaxMR * kQNR, kAlign);
  // Bit rows: one word per im2col block row, or kQMaxMR per word of a direct tile.
  const size_t words = std::max<size_t>(static_cast<size_t>(block_rows()),
                                        static_cast<size_t>(words_for(g_.out_channels) * qgemm::kQMaxMR));
  const size_t bits = round_up(sizeof(word_t) * words, kAlign);
  return a + acc + bits;
}

size_t QConv2d::panel_out_bytes() const { return round_up(sizeof(PanelOut) * static_cast<size_t>(panels_), kAlign); }

size_t QConv2d::image_bytes(int n, int in_h, int in_w) const {
  const size_t ph = static_cast<size_t>(in_h + 2 * g_.pad_h), pw = static_cast<size_t>(in_w + 2 * g_.pad_w);
  return round_up(static_cast<size_t>(n) * ph * pw * static_cast<size_t>(g_.in_channels) + kOverReadBytes, kAlign);
}

size_t QConv2d::tail_bytes(int n, int in_h, int in_w) const {
  if (!tgroups_) return 0;
  const size_t ph = static_cast<size_t>(in_h + 2 * g_.pad_h);
  return static_cast<size_t>(n) * static_cast<size_t>(std::max(0, g_.out_w(in_w))) * ph *
             static_cast<size_t>(trun_) + kQKGroup;  // + the last group's over-read
}

size_t QConv2d::workspace_bytes(int n, int in_h, int in_w) const {
  // + the direct path's group offsets (int32 per body group of the receptive field) and tails
  return kAlign + image_bytes(n, in_h, in_w) + panel_out_bytes() + static_cast<size_t>(scratch_slots()) * slot_bytes() +
         round_up(sizeof(int32_t) * static_cast<size_t>(dk4_ / kQKGroup), kAlign) + tail_bytes(n, in_h, in_w);
}

// The uint8 image with a border of in_zero (the quantized real 0) `pad` wide: the GEMM's im2col
// then needs no bounds checks. Without padding the input is used as it is.
const uint8_t* QConv2d::border(const uint8_t* q, int n, int in_h, int in_w, uint8_t* img) const {
  if (reads_in_place()) return q;
  if (g_.pad_h == 0 && g_.pad_w == 0) {  // a copy all the same: im2col reads past its runs
    std::memcpy(img, q, static_cast<size_t>(int64_t(n) * in_h * in_w * g_.in_channels));
    return img;
  }
  const int64_t IC = g_.in_channels, PH = in_h + 2 * g_.pad_h, PW = in_w + 2 * g_.pad_w;
  std::memset(img, in_zero_, static_cast<size_t>(n * PH * PW * IC));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t y = 0; y < in_h; ++y)
      std::memcpy(img + ((b * PH + y + g_.pad_h) * PW + g_.pad_w) * IC, q + (b * in_h + y) * in_w * IC,
                  static_cast<size_t>(in_w * IC));
  return img;
}

const uint8_t* QConv2d::quantize_input(const float* x, int n, int in_h, int in_w, uint8_t* img) const {
  const int64_t IC = g_.in_channels, PH = in_h + 2 * g_.pad_h, PW = in_w + 2 * g_.pad_w;
  if (g_.pad_h || g_.pad_w) std::memset(img, in_zero_, static_cast<size_t>(n * PH * PW * IC));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t y = 0; y < in_h; ++y)
      quantize_rows(x + (b * in_h + y) * in_w * IC, in_w * IC, in_scale_, in_zero_,
                    img + ((b * PH + y + g_.pad_h) * PW + g_.pad_w) * IC);
  return img;
}

void QConv2d::setup_panel(const Out& out, int64_t p, PanelOut& po) const {
  po.oc0 = p * kQNR;
  po.jn = static_cast<int>(std::min<int64_t>(kQNR, g_.out_channels - po.oc0));
  po.zc = zcorr_.data() + p * kQNR;
  for (int j = 0; j < kQNR; ++j) {
    po.scale16[j] = out.t && out.t->scale && j < po.jn ? out.t->scale[po.oc0 + j] : 1.0f;
    po.bias16[j] = out.t && out.t->bias && j < po.jn ? out.t->bias[po.oc0 + j] : -0.0f;
  }
  po.flip = 0;
  for (int j = 0; j < kQNR; ++j) po.thr16[j] = std::numeric_limits<float>::quiet_NaN();
  if (out.bits)
    for (int j = 0; j < po.jn; ++j) {
      po.thr16[j] = out.t->out_threshold[po.oc0 + j];
      if (out.t->out_flip && out.t->out_flip[po.oc0 + j]) po.flip |= 1u << j;
    }
}

// The row kernels' view of a panel's output stage.
qgemm::QStore QConv2d::store_of(const Out& out, const PanelOut& po) {
  return {po.zc, po.scale16, po.bias16, out.t && out.t->act == Activation::relu, po.thr16, po.flip};
}

// One tile's accumulators (mr rows from output row m1, one panel) to the output: floats, or
// the panel's 16 bits ORed into bitrow[0..mr) (the panel's word), or raw accumulators.
void QConv2d::emit_panel(const qgemm::QKernel& kern, const Out& out, const PanelOut& po, const int32_t* tacc,
                         int mr, int64_t m1, int OC, word_t* bitrow) {
  const bool generic = out.acc || (out.t && out.t->pixel_scale);
  const qgemm::QStore st = store_of(out, po);
  if (!generic && out.y) {
    kern.store(tacc, mr, po.jn, st, out.y + m1 * OC + po.oc0, OC);
    return;
  }
  if (!generic && out.bits) {  // a panel is 16 channels of one word (kPanelsPerTask)
    uint16_t masks[qgemm::kQMaxMR];
    kern.store_bits(tacc, mr, po.jn, st, masks);
    const int shift = static_cast<int>(po.oc0 % kWordBits);
    for (int r = 0; r < mr; ++r) bitrow[r] |= word_t(masks[r]) << shift;
    return;
  }
  // Raw accumulators, or a transform with a per-pixel scale: element by element.
  for (int r = 0; r < mr; ++r) {
    const int64_t m = m1 + r;
    word_t w = 0;
    for (int j = 0; j < po.jn; ++j) {
      const int64_t oc = po.oc0 + j;
      const int32_t d = static_cast<int32_t>(static_cast<uint32_t>(tacc[r * kQNR + j]) - static_cast<uint32_t>(po.zc[j]));
      if (out.acc) {
        out.acc[m * OC + oc] = d;
        continue;
      }
      const float y = apply_transform(*out.t, static_cast<float>(d), m, oc);
      if (out.y)
        out.y[m * OC + oc] = y;
      else
        w |= word_t(threshold_bit(*out.t, y, oc)) << (oc % kWordBits);
    }
    if (out.bits) bitrow[r] |= w;
  }
}

void QConv2d::gemm(const uint8_t* img, int n, int in_h, int in_w, const Out& out, const PanelOut* pos,
                   uint8_t* ws, ThreadPool& pool, const RowsDone* rows_done) const {
  const int OH = g_.out_h(in_h), OW = g_.out_w(in_w), OC = g_.out_channels;
  const int64_t M = int64_t(n) * OH * OW;
  if (M <= 0) return;
  const int64_t IC = g_.in_channels, PH = in_h + 2 * g_.pad_h, PW = in_w + 2 * g_.pad_w;
  const int64_t run = int64_t(g_.kernel_w) * IC;  // one kernel row of the receptive field
  const int MB = block_rows();
  const int64_t mblocks = (M + MB - 1) / MB;
  const int64_t ngroups = (panels_ + kPanelsPerTask - 1) / kPanelsPerTask;
  const int64_t words = words_for(OC);
  const qgemm::QKernel& kern = qgemm::active_qkernel();
  const size_t a_bytes = reads_in_place() ? 0 : round_up(static_cast<size_t>(MB * k4_) + kRunSlack, kAlign);
  const size_t acc_bytes = round_up(sizeof(int32_t) * qgemm::kQMaxNP * qgemm::kQMaxMR * kQNR, kAlign);
  const size_t slot = slot_bytes();
  const bool in_place = reads_in_place();

  auto task = [&](int64_t begin, int64_t end, int thread) {
    uint8_t* s = ws + static_cast<size_t>(thread) * slot;
    uint8_t* ablock = s;
    int32_t* acc = reinterpret_cast<int32_t*>(s + a_bytes);
    word_t* bitrow = reinterpret_cast<word_t*>(s + a_bytes + acc_bytes);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t mb = t / ngroups, ng = t % ngroups;
      const int64_t m0 = mb * MB, rows = std::min<int64_t>(MB, M - m0);
      const uint8_t* a;
      int64_t lda;
      if (in_place) {
        a = img + m0 * IC;
        lda = IC;
      } else {
        // im2col of rows m0..m0+rows: KH runs of KW*IC bytes each, then zeros up to K4.
        // The first row's pixel by division, the rest by stepping (divisions per row cost
        // about as much as the copy).
        int64_t b = m0 / (int64_t(OH) * OW), rem = m0 % (int64_t(OH) * OW);
        int64_t oy = rem / OW, ox = rem % OW;
        for (int64_t r = 0; r < rows; ++r) {
          uint8_t* dst = ablock + r * k4_;
          const uint8_t* src = img + ((b * PH + oy * g_.stride_h) * PW + ox * g_.stride_w) * IC;
          // Bytes k_..k4_ (and the excess of the last run) meet zero weights: any value will do.
          for (int kh = 0; kh < g_.kernel_h; ++kh) copy_run(dst + kh * run, src + kh * PW * IC, run);
          if (++ox == OW) {
            ox = 0;
            if (++oy == OH) oy = 0, ++b;
          }
        }
        a = ablock;
        lda = k4_;
      }
      const int64_t p0 = ng * kPanelsPerTask, p1 = std::min<int64_t>(panels_, p0 + kPanelsPerTask);
      if (out.bits) std::memset(bitrow, 0, sizeof(word_t) * static_cast<size_t>(rows));
      for (int64_t p = p0; p < p1;) {
        // Two adjacent panels per tile where the row has such a kernel (panel p + 1 follows
        // panel p in packed_, and its wsum follows p's).
        const int np = kern.tile2 && p + 1 < p1 ? 2 : 1;
        const int8_t* panel = packed_.data() + p * k4_ * kQNR;
        const int32_t* wsum = wsum_.data() + p * kQNR;
        for (int64_t r0 = 0; r0 < rows; r0 += kern.mr) {
          const int mr = static_cast<int>(std::min<int64_t>(kern.mr, rows - r0));
          (np == 2 ? kern.tile2 : kern.tile)(a + r0 * lda, lda, mr, panel, k4_, wsum, acc);
          for (int j = 0; j < np; ++j)
            emit_panel(kern, out, pos[p + j], acc + j * qgemm::kQMaxMR * kQNR, mr, m0 + r0, OC, bitrow + r0);
        }
        p += np;
      }
      if (out.bits)
        for (int64_t r = 0; r < rows; ++r) out.bits[(m0 + r) * words + p0 / kPanelsPerTask] = bitrow[r];
      if (ngroups == 1 && rows_done) (*rows_done)(m0, m0 + rows);
    }
  };
  pool.parallel_for_dynamic(mblocks * ngroups, task, 1, scratch_slots());
}

// The direct conv (no im2col): tasks are bands of output rows x every panel; a tile is up to
// direct_mr pixels of one output row (the row split evenly into tiles) times up to direct_np
// panels, its A read in place from the bordered image (qgemm::QRuns).
void QConv2d::gemm_direct(const uint8_t* img, int n, int in_h, int in_w, const Out& out, const PanelOut* pos,
                          uint8_t* ws, ThreadPool& pool, const RowsDone* rows_done) const {
  const int OH = g_.out_h(in_h), OW = g_.out_w(in_w), OC = g_.out_channels;
  if (int64_t(n) * OH * OW <= 0) return;
  const int64_t IC = g_.in_channels, PH = in_h + 2 * g_.pad_h, PW = in_w + 2 * g_.pad_w;
  const qgemm::QKernel& kern = qgemm::active_qkernel();
  const int64_t words = words_for(OC);
  // Bands of about 1024 output pixels (9 rows of ResNet-18's conv1, 256 KB of floats: in L2):
  // the pool's tasks, and what a fused max-pool is handed. A fused pool computes the pooled
  // rows whose window lies inside a band (the rest after the conv), so a band must span
  // several windows: 2-row bands left every 3-row window of ResNet-18's pool to after the conv.
  // With several threads, at least two bands per thread where the rows allow (a 28x28 layer
  // would otherwise be one task).
  const int64_t out_rows = int64_t(n) * OH;
  int64_t band = std::max<int64_t>(1, 1024 / OW);
  if (pool.num_threads() > 1)
    band = std::max<int64_t>(1, std::min<int64_t>(band, out_rows / (2 * int64_t(pool.num_threads()))));
  const int64_t bands = (out_rows + band - 1) / band;
  const int row_tiles = (OW + kern.direct_mr - 1) / kern.direct_mr;
  const int8_t* dpanels = dpacked_.empty() ? packed_.data() : dpacked_.data();
  const bool fused_store = kern.direct_store && out.y && out.t && !out.t->pixel_scale;
  const bool fused_bits = kern.direct_bits && out.bits && out.t && !out.t->pixel_scale;
  const size_t slot = slot_bytes();
  const size_t acc_bytes = round_up(sizeof(int32_t) * qgemm::kQMaxNP * qgemm::kQMaxMR * kQNR, kAlign);
  // The receptive field's body group offsets for this image width (qgemm::QRuns), after the
  // slots, then the tails.
  int32_t* koff = reinterpret_cast<int32_t*>(ws + static_cast<size_t>(scratch_slots()) * slot);
  const int64_t body = dk4_ / kQKGroup - tgroups_;
  for (int64_t g = 0; g < body; ++g)
    koff[g] = static_cast<int32_t>(g * kQKGroup / brun_ * PW * IC + g * kQKGroup % brun_);
  // Tails: tail[b][ox][Y] = the trun bytes past the body of the run at output column ox in
  // padded row Y of image b, so pixel (oy, ox)'s KH tails are contiguous from Y = oy * stride_h
  // and the next pixel's are PH * trun bytes on. Built here, once per run (25 KB for
  // ResNet-18's conv1, ~1% of its time: a small fraction of the groups it saves).
  uint8_t* tail = reinterpret_cast<uint8_t*>(koff) + round_up(sizeof(int32_t) * static_cast<size_t>(dk4_ / kQKGroup), kAlign);
  const int64_t ldt = PH * trun_;
  if (tgroups_) {
    for (int64_t b = 0; b < n; ++b)
      gather_tails(img + b * PH * PW * IC + brun_, PW * IC, g_.stride_w * IC, OW, PH, trun_, tail + b * OW * ldt);
    std::memset(tail + n * OW * ldt, 0, kQKGroup);  // the last group's over-read: defined bytes
  }
  auto task = [&](int64_t begin, int64_t end, int thread) {
    uint8_t* s = ws + static_cast<size_t>(thread) * slot;
    int32_t* acc = reinterpret_cast<int32_t*>(s);
    word_t* bitrow = reinterpret_cast<word_t*>(s + acc_bytes);  // [words][kQMaxMR]
    for (int64_t t = begin; t < end; ++t) {
      const int64_t R0 = t * band, R1 = std::min(out_rows, R0 + band);
      for (int64_t R = R0; R < R1; ++R) {
        const int64_t b = R / OH, oy = R % OH;
        const uint8_t* row = img + ((b * PH + oy * g_.stride_h) * PW) * IC;
        for (int i = 0; i < row_tiles; ++i) {
          const int ow0 = static_cast<int>(int64_t(i) * OW / row_tiles);
          const int mr = static_cast<int>(int64_t(i + 1) * OW / row_tiles) - ow0;
          const qgemm::QRuns a{row + int64_t(ow0) * g_.stride_w * IC, int64_t(g_.stride_w) * IC, koff,
                               tail + (b * OW + ow0) * ldt + oy * g_.stride_h * trun_, ldt, tgroups_};
          const int64_t m1 = R * OW + ow0;
          if (fused_bits) {
            // Panel q's 16 bits are bytes 2q, 2q + 1 of the pixel's words (little-endian x86,
            // the only rows with this stage): the tile writes them in place.
            uint8_t* dst = reinterpret_cast<uint8_t*>(out.bits + m1 * words);
            const int64_t ldb = words * int64_t(sizeof(word_t));
            for (int64_t p = 0; p < panels_;) {
              const int np = static_cast<int>(std::min<int64_t>(kern.direct_np, panels_ - p));
              qgemm::QStore st[qgemm::kQMaxNP];
              for (int j = 0; j < np; ++j) st[j] = store_of(out, pos[p + j]);
              kern.direct_bits(a, mr, np, dpanels + p * dk4_ * kQNR, dk4_, st, dst + 2 * p, ldb);
              p += np;
            }
            for (int r = 0; r < mr; ++r)  // the last word's bytes past the last panel
              std::memset(dst + r * ldb + 2 * panels_, 0, static_cast<size_t>(ldb - 2 * panels_));
            continue;
          }
          if (out.bits) std::memset(bitrow, 0, sizeof(word_t) * static_cast<size_t>(words * qgemm::kQMaxMR));
          for (int64_t p = 0; p < panels_;) {
            const int np = static_cast<int>(std::min<int64_t>(kern.direct_np, panels_ - p));
            if (fused_store && (p + np) * kQNR <= OC) {  // full panels, float output
              qgemm::QStore st[qgemm::kQMaxNP];
              for (int j = 0; j < np; ++j) st[j] = store_of(out, pos[p + j]);
              kern.direct_store(a, mr, np, dpanels + p * dk4_ * kQNR, dk4_, st, out.y + m1 * OC + p * kQNR, OC);
              p += np;
              continue;
            }
            kern.direct(a, mr, np, dpanels + p * dk4_ * kQNR, dk4_, wsum_.data() + p * kQNR, acc);
            for (int j = 0; j < np; ++j) {
              const int64_t q = p + j;
              emit_panel(kern, out, pos[q], acc + j * qgemm::kQMaxMR * kQNR, mr, m1, OC,
                         bitrow + q / kPanelsPerTask * qgemm::kQMaxMR);
            }
            p += np;
          }
          if (out.bits)
            for (int r = 0; r < mr; ++r)
              for (int64_t w = 0; w < words; ++w) out.bits[(m1 + r) * words + w] = bitrow[w * qgemm::kQMaxMR + r];
        }
      }
      if (rows_done) (*rows_done)(R0 * OW, R1 * OW);
    }
  };
  pool.parallel_for_dynamic(bands, task, 1, scratch_slots());
}

namespace {
uint8_t* aligned(void* ws) {
  const uintptr_t p = reinterpret_cast<uintptr_t>(ws);
  return reinterpret_cast<uint8_t*>((p + kAlign - 1) / kAlign * kAlign);
}
}  // namespace

void QConv2d::run_out(const float* x, const uint8_t* q, int n, int in_h, int in_w, const Out& o, void* ws,
                      ThreadPool& pool) const {
  uint8_t* img = aligned(ws);
  const uint8_t* a = x ? quantize_input(x, n, in_h, in_w, img) : border(q, n, in_h, in_w, img);
  PanelOut* pos = reinterpret_cast<PanelOut*>(img + image_bytes(n, in_h, in_w));
  for (int64_t p = 0; p < panels_; ++p) setup_panel(o, p, pos[p]);
  uint8_t* slots = reinterpret_cast<uint8_t*>(pos) + panel_out_bytes();
  if (uses_direct(in_w))
    gemm_direct(a, n, in_h, in_w, o, pos, slots, pool, o.rows_done);
  else
    gemm(a, n, in_h, in_w, o, pos, slots, pool, o.rows_done);
}

void QConv2d::run(const float* x, int n, int in_h, int in_w, const OutputTransform& t, float* y, void* ws,
                  ThreadPool& pool, const RowsDone* rows_done) const {
  Out o;
  o.t = &t;
  o.y = y;
  o.rows_done = rows_done;
  run_out(x, nullptr, n, in_h, in_w, o, ws, pool);
}

void QConv2d::run_bits(const float* x, int n, int in_h, int in_w, const OutputTransform& t, word_t* y,
                       void* ws, ThreadPool& pool) const {
  if (!t.out_threshold) throw std::invalid_argument("QConv2d::run_bits needs out_threshold");
  Out o;
  o.t = &t;
  o.bits = y;
  run_out(x, nullptr, n, in_h, in_w, o, ws, pool);
}

void QConv2d::run_u8(const uint8_t* q, int n, int in_h, int in_w, const OutputTransform& t, float* y,
                     void* ws, ThreadPool& pool, const RowsDone* rows_done) const {
  Out o;
  o.t = &t;
  o.y = y;
  o.rows_done = rows_done;
  run_out(nullptr, q, n, in_h, in_w, o, ws, pool);
}

void QConv2d::run_u8_bits(const uint8_t* q, int n, int in_h, int in_w, const OutputTransform& t, word_t* y,
                          void* ws, ThreadPool& pool) const {
  if (!t.out_threshold) throw std::invalid_argument("QConv2d::run_u8_bits needs out_threshold");
  Out o;
  o.t = &t;
  o.bits = y;
  run_out(nullptr, q, n, in_h, in_w, o, ws, pool);
}

void QConv2d::run_acc(const uint8_t* q, int n, int in_h, int in_w, int32_t* acc, void* ws,
                      ThreadPool& pool) const {
  Out o;
  o.acc = acc;
  run_out(nullptr, q, n, in_h, in_w, o, ws, pool);
}

}  // namespace hbn

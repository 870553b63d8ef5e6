// The GEMM entry point: gemm_run picks a driver (LUT, direct or blocked), plus workspace sizing
// and the pieces the drivers share (gemm_internal.h): im2col blocks, bit-panel decoding, the
// work split, the zero-padded image copy.
#include "fconv/gemm_driver.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "fconv/gemm_internal.h"
#include "hbn/types.h"
#include "wbconv/lut.h"
#include "wbconv/wb_strategy.h"

namespace hbn {
namespace sgemm_detail {

namespace {

// The longest kernel row (KW * IC floats) any ISA's K block holds; prefer_direct's bound.
constexpr int64_t kDirectMaxRun = 256;

size_t slot_floats(const KernelSet& ks) {
  return static_cast<size_t>(ks.mr) * ks.mc_tiles * a_stride(ks.kc) + static_cast<size_t>(ks.kc) * kNR;
}

}  // namespace

size_t max_slot_bytes() {
  // Every row of the table, supported here or not: the workspace does not depend on the path.
  static const size_t bytes = [] {
    const KernelTable<KernelSet>& table = sgemm_kernels();
    size_t s = 0;
    for (int i = 0; i < table.size(); ++i) s = std::max(s, slot_floats(table.row(i).kernel));
    // Rounded up with a spare cache line so two threads' slots never share a line.
    return align_up(s * sizeof(float) + kOverReadBytes, kAlignment);
  }();
  return bytes;
}

namespace {

// Copies (src non-null) or zeroes n floats. The im2col runs of first layers are short (KW * IC
// = 21 floats for a 7x7 RGB kernel) and there are one per kh per output pixel, so a libc call
// each cost as much as a third of the GEMM behind a 64-channel first layer; fixed-size chunks
// compile to inline vector moves.
inline void copy_or_zero(float* d, const float* src, int64_t n) {
  if (n >= 64) {
    if (src) std::memcpy(d, src, sizeof(float) * n);
    else std::memset(d, 0, sizeof(float) * n);
    return;
  }
  alignas(32) static const float zeros[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) std::memcpy(d + i, src ? src + i : zeros, 8 * sizeof(float));
  if (i + 4 <= n) {
    std::memcpy(d + i, src ? src + i : zeros, 4 * sizeof(float));
    i += 4;
  }
  for (; i < n; ++i) d[i] = src ? src[i] : 0.0f;
}

// Writes the part of [seg_begin, seg_end) (columns of one im2col row) that falls inside the
// block [k0, k0 + kc) to d (d[0] is column k0): a copy of src when src is non-null, else zeros.
inline void emit_segment(int64_t seg_begin, int64_t seg_end, const float* src, int64_t k0, int kc,
                         float* d) {
  const int64_t lo = std::max(seg_begin, k0), hi = std::min(seg_end, k0 + kc);
  if (lo >= hi) return;
  copy_or_zero(d + (lo - k0), src ? src + (lo - seg_begin) : nullptr, hi - lo);
}

}  // namespace

// Materialises rows [m0, m0 + rows) x columns [k0, k0 + kc) of the implicit im2col matrix into
// dst (row-major, row stride ld). k runs (kh, kw, ic) with ic fastest, so for one kh the taps
// whose columns are inside the image are one contiguous run of the NHWC input (KW * IC floats
// when nothing is clipped: one copy, not KW), and taps in the zero padding become zeros.
void im2col_block(const ASource& s, int64_t m0, int rows, int64_t k0, int kc, float* dst, int64_t ld) {
  const ConvGeometry& g = *s.conv;
  const int IC = g.in_channels, KW = g.kernel_w;
  const int64_t row_len = static_cast<int64_t>(KW) * IC;  // im2col columns per kh
  const int64_t pix = static_cast<int64_t>(s.out_h) * s.out_w;
  const int kh_first = static_cast<int>(k0 / row_len);
  const int kh_last = static_cast<int>((k0 + kc - 1) / row_len);
  // The output pixel of row m0, then stepped row by row (no divisions per row).
  int64_t img = m0 / pix;
  int oh = static_cast<int>((m0 % pix) / s.out_w), ow = static_cast<int>(m0 % s.out_w);
  for (int r = 0; r < rows; ++r) {
    const int ih0 = oh * g.stride_h - g.pad_h, iw0 = ow * g.stride_w - g.pad_w;
    const float* img_base = s.in + img * s.in_h * s.in_w * static_cast<int64_t>(IC);
    // Taps kw in [kw_lo, kw_hi) read columns inside the image.
    const int kw_lo = std::min(KW, std::max(0, -iw0));
    const int kw_hi = std::max(kw_lo, std::min(KW, s.in_w - iw0));
    float* d = dst + r * ld;
    if (kw_lo == 0 && kw_hi == KW && ih0 + kh_first >= 0 && ih0 + kh_last < s.in_h) {
      // Interior pixel (the common case): one run per kh, no padding to test for.
      const float* src = img_base + (static_cast<int64_t>(ih0 + kh_first) * s.in_w + iw0) * IC;
      const int64_t src_step = static_cast<int64_t>(s.in_w) * IC;
      if (k0 == kh_first * row_len && k0 + kc == (kh_last + 1) * row_len) {
        for (int j = 0; j <= kh_last - kh_first; ++j)
          copy_or_zero(d + j * row_len, src + j * src_step, row_len);
      } else {
        for (int kh = kh_first; kh <= kh_last; ++kh)
          emit_segment(kh * row_len, (kh + 1) * row_len, src + (kh - kh_first) * src_step, k0, kc, d);
      }
    } else {
      for (int kh = kh_first; kh <= kh_last; ++kh) {
        const int ih = ih0 + kh;
        const int64_t base = kh * row_len;
        if (ih < 0 || ih >= s.in_h) {
          emit_segment(base, base + row_len, nullptr, k0, kc, d);
          continue;
        }
        emit_segment(base, base + static_cast<int64_t>(kw_lo) * IC, nullptr, k0, kc, d);
        emit_segment(base + static_cast<int64_t>(kw_lo) * IC, base + static_cast<int64_t>(kw_hi) * IC,
                     img_base + (static_cast<int64_t>(ih) * s.in_w + iw0 + kw_lo) * IC, k0, kc, d);
        emit_segment(base + static_cast<int64_t>(kw_hi) * IC, base + row_len, nullptr, k0, kc, d);
      }
    }
    if (++ow == s.out_w) {
      ow = 0;
      if (++oh == s.out_h) {
        oh = 0;
        ++img;
      }
    }
  }
}

void unpack_bits_panel(const uint32_t* bits, int kc, float* dst) {
  for (int k = 0; k < kc; ++k) {
    const uint32_t w = bits[k];
    float* d = dst + static_cast<int64_t>(k) * kNR;
    // Branch-free: bit j moved to the float sign bit of 1.0f.
    for (int j = 0; j < kNR; ++j) {
      const uint32_t f = 0x3f800000u | (((w >> j) & 1u) << 31);
      std::memcpy(d + j, &f, sizeof f);
    }
  }
}

WorkSplit split_work(int64_t M, int64_t panels, int64_t MC_max, int tile_rows, int slots) {
  WorkSplit w;
  w.MC = MC_max;
  w.m_blocks = (M + MC_max - 1) / MC_max;
  if (slots > 1) {
    // Equal row blocks, a multiple of the thread count (3 full blocks on 2 threads, AlexNet
    // conv2 at M = 729, ran 1.5x), up to 4 per thread since tasks are handed out dynamically,
    // whenever each block keeps 4 tiles. Splitting rows rather than columns keeps threads from
    // building the same im2col blocks (3x3 256->256 on 14x14: 1.53x -> 1.90x on 2 threads).
    for (const int64_t per : {4, 1}) {
      const int64_t target = (w.m_blocks + per * slots - 1) / (per * slots) * (per * slots);
      if (M >= target * 4 * tile_rows) {
        w.m_blocks = target;
        break;
      }
    }
    w.MC = ((M + w.m_blocks - 1) / w.m_blocks + tile_rows - 1) / tile_rows * tile_rows;
    w.m_blocks = (M + w.MC - 1) / w.MC;
  }
  // Short M (a batch-1 linear layer): the column panels are split instead.
  w.n_chunks = 1;
  if (w.m_blocks < slots) w.n_chunks = std::min<int64_t>(panels, (slots + w.m_blocks - 1) / w.m_blocks);
  w.per_chunk = (panels + w.n_chunks - 1) / w.n_chunks;
  w.n_chunks = (panels + w.per_chunk - 1) / w.per_chunk;
  return w;
}

BPanel b_panel(const GemmArgs& args, WBStrategy strat, int64_t p, int64_t k0, int kc,
               float* b_buf) {
  BPanel out;
  if (!args.b_bits) {
    out.f = args.b_packed + (p * args.K + k0) * kNR;
  } else if (strat == WBStrategy::unpack) {
    unpack_bits_panel(args.b_bits + p * args.K + k0, kc, b_buf);
    out.f = b_buf;
  } else {
    out.bits = args.b_bits + p * args.K + k0;
  }
  return out;
}

int64_t padded_image_floats(const ConvGeometry& g, int in_h, int in_w) {
  if (g.pad_h == 0 && g.pad_w == 0) return 0;
  return static_cast<int64_t>(in_h + 2 * g.pad_h) * (in_w + 2 * g.pad_w) * g.in_channels;
}

void pad_image(const float* in, int in_h, int in_w, const ConvGeometry& g, float* out,
               ThreadPool& pool) {
  const int64_t C = g.in_channels, wp = in_w + 2 * g.pad_w, hp = in_h + 2 * g.pad_h;
  const int64_t left = g.pad_w * C, body = in_w * C, right = wp * C - left - body;
  pool.parallel_for(hp, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      float* d = out + r * wp * C;
      const int64_t ih = r - g.pad_h;
      if (ih < 0 || ih >= in_h) {
        std::memset(d, 0, sizeof(float) * wp * C);
        continue;
      }
      std::memset(d, 0, sizeof(float) * left);
      std::memcpy(d + left, in + ih * body, sizeof(float) * body);
      std::memset(d + left + body, 0, sizeof(float) * right);
    }
  });
}

int gemm_scratch_slots() {
  static const int slots = std::max(8, static_cast<int>(std::thread::hardware_concurrency()));
  return slots;
}

size_t gemm_workspace_bytes() {
  return static_cast<size_t>(gemm_scratch_slots()) * max_slot_bytes() + kAlignment;
}

// Measured on Zen 4, one thread, GMAC/s im2col -> direct (AVX-512 / AVX2): ResNet-18 conv1
// 42.9 -> 49.5 / 39.4 -> 48.3, Sketch-A-Net conv1 (15x15, 1 channel) 40.3 -> 49.5 / 32.3 -> 53.3,
// 3x3 with 16 channels 47.7 -> 52.5 / 46.6 -> 51.8, with 64 channels on 28x28 52.2 -> 53.3 (AVX-512),
// 5x5 RGB 33.6 -> 50.5: never slower where the kernel row fits a K block, so that is the rule.
bool prefer_direct(const ConvGeometry& g) {
  return static_cast<int64_t>(g.kernel_w) * g.in_channels <= kDirectMaxRun;
}

size_t conv_workspace_bytes(const ConvGeometry& g, ConvAlgo algo, int in_h, int in_w) {
  size_t b = gemm_workspace_bytes();
  if (algo == ConvAlgo::direct || (algo == ConvAlgo::automatic && prefer_direct(g)))
    b += align_up(sizeof(float) * static_cast<size_t>(padded_image_floats(g, in_h, in_w)), kAlignment);
  return b;
}

void gemm_run(const GemmArgs& args, ThreadPool& pool) {
  const int64_t M = args.M, N = args.N, K = args.K;
  if (M <= 0 || N <= 0) return;
  if (args.t && args.t->out_threshold)
    throw std::invalid_argument("float kernels write floats: out_threshold is not supported");
  const KernelSet& ks = active_kernels();
  const bool use_bits = args.b_bits != nullptr;
  // LUT panels alone are a complete B operand when the LUT kernel takes this GEMM (a WeightBin
  // conv keeps only those where that is always so).
  const bool use_lut = args.b_lut && args.lut && prefer_lut(*args.lut, ks, args.bits_strategy, M);
  if (!use_bits && !use_lut && !args.b_packed) throw std::invalid_argument("gemm_run: no B operand");

  if (K == 0) {
    // Degenerate but well defined: every dot product is 0.
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n)
        args.C[m * args.ldc + n] = args.t ? apply_transform(*args.t, 0.0f, m, n) : 0.0f;
    return;
  }

  char* ws = static_cast<char*>(args.workspace);
  ws += (kAlignment - reinterpret_cast<uintptr_t>(ws) % kAlignment) % kAlignment;
  // One driver per way of feeding the micro-kernels: LUT panels (wbconv/lut_driver.cc), the
  // conv input read in place (gemm_direct.cc), or blocks of A (gemm_blocked.cc).
  if (use_lut) return run_lut(args, *args.lut, ks, ws, pool);
  if (use_direct(args.A, ks)) return run_direct(args, ks, ws, pool);
  run_blocked(args, ks, ws, pool);
}

}  // namespace sgemm_detail
}  // namespace hbn

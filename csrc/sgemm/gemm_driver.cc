#include "sgemm/gemm_driver.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "hbn/types.h"

namespace hbn {
namespace sgemm_detail {

namespace {

// Row stride of an A block copied into the workspace: a multiple of 16 floats plus 16, so the
// MR rows a micro-kernel reads together fall in different L1 sets. Read in place, a matrix whose
// rows are a multiple of 4 KiB apart (K = 1024, 4096, 9216, ...) puts all of them in one set
// and thrashes L1 on every k step (measured: fc 9216->4096 batch 16 ran at a third of peak).
constexpr int64_t a_stride(int64_t k) { return (k + 15) / 16 * 16 + 16; }

// True when MR rows `lda` floats apart crowd into few L1 sets (the 4 KiB case above). Then
// the A block is copied to a_stride rows; otherwise it is read in place, which saves a copy
// per element that matters when N is small (a 1x1 conv with 64 outputs reuses A only 64x).
bool rows_alias(int64_t lda, int mr) {
  constexpr int kSets = 64, kLine = 64;
  int count[kSets] = {};
  for (int r = 0; r < mr; ++r)
    if (++count[(r * lda * static_cast<int64_t>(sizeof(float)) / kLine) % kSets] > 2) return true;
  return false;
}

constexpr size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

// The longest kernel row (KW * IC floats) any ISA's K block holds; prefer_direct's bound.
constexpr int64_t kDirectMaxRun = 256;

size_t slot_floats(const KernelSet& ks) {
  return static_cast<size_t>(ks.mr) * ks.mc_tiles * a_stride(ks.kc) + static_cast<size_t>(ks.kc) * kNR;
}

size_t max_slot_bytes() {
  size_t s = slot_floats(scalar_kernels());
#if defined(HBN_X86)
  s = std::max(s, slot_floats(avx2_kernels()));
  s = std::max(s, slot_floats(avx512_kernels()));
#endif
#if defined(HBN_ARM64)
  s = std::max(s, slot_floats(neon_kernels()));
#endif
  // Rounded up with a spare cache line so two threads' slots never share a line.
  return align_up(s * sizeof(float) + kOverReadBytes, kAlignment);
}

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

// Decodes a bit panel (bit j of word k = sign of column j, 1 = -1) into a float panel [kc][32].
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

// How a GEMM of M rows and `panels` column panels is cut into tasks for `slots` threads: row
// blocks of MC rows (at most MC_max, a multiple of tile_rows, so every tile but the last is
// full and results do not depend on the thread count) times chunks of per_chunk panels.
struct WorkSplit {
  int64_t MC, m_blocks, per_chunk, n_chunks;
  int64_t tasks() const { return m_blocks * n_chunks; }
};
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

// Whether the automatic strategy takes the LUT kernel. AVX-512 always (see run_lut). AVX2, on
// Zen 4 in G MACs/s, LUT vs decode + FMA: fc 9216->4096 batch 1 36-37 vs 24, but 3x3 convs
// (256->256 14x14, 512->512 7x7, 128->128 28x28) and 1x1 512->1000 on 13x13 51-53 vs 51-53:
// its 8-entry tables only pay where the FMA tiles are short.
bool prefer_lut(const KernelSet& ks, int64_t M) {
  return ks.isa == Isa::avx512 || M < ks.mr;
}

// The B micro-panel of column panel p, K block [k0, k0 + kc), as the micro-kernel takes it:
// packed floats, a bit panel decoded into b_buf (unpack), or the bits themselves (direct).
struct BPanel {
  const float* f = nullptr;
  const uint32_t* bits = nullptr;
};
BPanel b_panel(const GemmArgs& args, BitsStrategy strat, int64_t p, int64_t k0, int kc,
               float* b_buf) {
  BPanel out;
  if (!args.b_bits) {
    out.f = args.b_packed + (p * args.K + k0) * kNR;
  } else if (strat == BitsStrategy::unpack) {
    unpack_bits_panel(args.b_bits + p * args.K + k0, kc, b_buf);
    out.f = b_buf;
  } else {
    out.bits = args.b_bits + p * args.K + k0;
  }
  return out;
}

// Strategy for the binary-weight path, from benchmarks/bench_float_kernels.py on Zen 4 (one
// thread, % of the FMA peak measured in the same run, unpack vs direct):
//   256->256 3x3 on 14x14 (M=196, K=2304): AVX2 71% vs 91%, AVX-512 78% vs 84%
//   AlexNet conv2 (M=729, K=2400):          AVX2 78% vs 89%, AVX-512 78% vs 82%
//   fc 9216->4096 batch 1:                  ~3% vs 42% (AVX2), 50% (AVX-512)
//   fc 9216->4096 batch 16:                 ~31% vs 88% (AVX2), 79% (AVX-512)
// Decoding in registers costs a k-mask blend per 16 columns (AVX-512) or shift+and+or per 8
// (AVX2, on the integer pipes beside the FMAs), once per k step for the whole MR-row tile,
// while the unpacked panel costs a 32x larger B stream through L1 plus the decode pass, which a
// short M (batch-1 linear layers) never amortises. So x86 always decodes in registers.
// NEON could not be measured here (it runs under qemu in CI): it decodes in registers only for
// blocks of at most one row tile, where an unpacked panel would be used once and thrown away,
// and otherwise unpacks, since its decode (test + select per 4 columns) is dearer relative to
// its 4-wide FMAs than AVX-512's. The scalar path has no decoder and always unpacks.
BitsStrategy choose_bits_strategy(const KernelSet& ks, int64_t rows_in_block) {
  if (!ks.bits) return BitsStrategy::unpack;
  if (ks.isa == Isa::neon && rows_in_block > ks.mr) return BitsStrategy::unpack;
  return BitsStrategy::direct;
}

// Floats of the zero-padded image copy the direct path reads (0 when the conv does not pad).
int64_t padded_image_floats(const ConvGeometry& g, int in_h, int in_w) {
  if (g.pad_h == 0 && g.pad_w == 0) return 0;
  return static_cast<int64_t>(in_h + 2 * g.pad_h) * (in_w + 2 * g.pad_w) * g.in_channels;
}

bool use_direct(const ASource& s, const KernelSet& ks) {
  if (!s.conv || s.algo == ConvAlgo::im2col) return false;
  if (s.algo == ConvAlgo::automatic && !prefer_direct(*s.conv)) return false;
  // A kernel row longer than this ISA's K block would not fit the per-thread B buffer of the
  // unpack strategy; such convs have many channels, where im2col is cheap anyway.
  return static_cast<int64_t>(s.conv->kernel_w) * s.conv->in_channels <= ks.kc;
}

// Copies one NHWC image into the centre of a zeroed (in_h + 2ph) x (in_w + 2pw) image.
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
  BitsStrategy strat = BitsStrategy::unpack;
  if (use_bits) {
    strat = args.bits_strategy == BitsStrategy::unpack || args.bits_strategy == BitsStrategy::direct
                ? args.bits_strategy
                : choose_bits_strategy(ks, static_cast<int64_t>(OH) * OW);
    if (strat == BitsStrategy::direct && !ks.bits) strat = BitsStrategy::unpack;
  }
  // Balanced bands, a multiple of the thread count when the image has the rows (71 rows on 2
  // threads: 16 bands of 4-5 rows, 36 + 35 rows, not 15 bands of 5 split 8 + 7). A decoded
  // bit panel is reused only within its band, so unpacking bands are as large as im2col's
  // row blocks (small ones ran at half speed: 3x3, 64 channels, 13x13).
  const int64_t pixels = static_cast<int64_t>(OH) * OW;
  const int64_t most_bands = use_bits && strat == BitsStrategy::unpack
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
      }
    };
    // Bands handed out one at a time: a thread the OS delays takes fewer (see the pool).
    pool.parallel_for_dynamic(tasks, [&body](int64_t b, int64_t e, int slot) { body(b, e, slot); }, 1, slots);
  }
}

// The table-lookup path (UKernelLut): row tiles of L.mr rows against LUT panels of L.nr
// columns, with the same blocking as gemm_run (row blocks x K blocks, im2col blocks built once
// per K block and reused by every panel, column panels split over threads for short M).
// Measured on Zen 4, one thread, G (float) MACs/s, LUT vs decode-in-registers + FMA (the FMA
// peak is 59): 3x3 256->256 on 14x14 118 vs 48, 512->512 on 7x7 123 vs 48, 128->128 on 28x28
// 116 vs 47, SqueezeNet conv10 (1x1 512->1000, 13x13) 121 vs 47, fc 9216->4096 batch 1 ~85 vs
// 28; 1x1 128->32 on 55x55 80 vs 47, 128->16 42 vs 42 (the kernel computes only the vectors
// holding valid columns). Tiles of 2 and 4 rows measured 112-121 and 83-119. So AVX-512
// always takes it for bits.
void run_lut(const GemmArgs& args, const KernelSet& ks, char* ws, ThreadPool& pool) {
  const int64_t M = args.M, N = args.N, K = args.K;
  const LutLayout& L = ks.lut_layout;
  const int64_t step = L.kstep(), words = (K + step - 1) / step;
  const int64_t panels = (N + L.nr - 1) / L.nr;
  const int KC = std::max<int>(ks.kc / L.kstep(), 1) * L.kstep();  // K blocks start on words
  const int64_t MC_max = static_cast<int64_t>(ks.mr) * ks.mc_tiles / L.mr * L.mr;
  const int slots = std::min(pool.num_threads(), gemm_scratch_slots());
  const WorkSplit sp = split_work(M, panels, MC_max, L.mr, slots);
  const int64_t MC = sp.MC, n_chunks = sp.n_chunks, per_chunk = sp.per_chunk, tasks = sp.tasks();
  const size_t slot_bytes = max_slot_bytes();
  static const OutputTransform identity;

  auto body = [&](int64_t t_begin, int64_t t_end, int slot) {
    float* a_buf = reinterpret_cast<float*>(ws + slot * slot_bytes);
    const int64_t ld_buf = a_stride(KC);
    for (int64_t task = t_begin; task < t_end; ++task) {
      const int64_t mb = task / n_chunks, nc = task % n_chunks;
      const int64_t m0 = mb * MC, m1 = std::min(M, m0 + MC);
      const int64_t p0 = nc * per_chunk, p1 = std::min(panels, p0 + per_chunk);
      for (int64_t k0 = 0; k0 < K; k0 += KC) {
        const int kc = static_cast<int>(std::min<int64_t>(KC, K - k0));
        const float* a;
        int64_t lda;
        if (args.A.conv) {
          im2col_block(args.A, m0, static_cast<int>(m1 - m0), k0, kc, a_buf, ld_buf);
          a = a_buf;
          lda = ld_buf;
        } else {
          a = args.A.a + m0 * args.A.lda + k0;
          lda = args.A.lda;
        }
        Tile tile;
        tile.ldc = args.ldc;
        tile.accumulate = k0 > 0;
        tile.t = k0 + kc == K ? (args.t ? args.t : &identity) : nullptr;
        for (int64_t p = p0; p < p1; ++p) {
          const uint32_t* panel = args.b_lut + (p * words + k0 / step) * L.nr;
          tile.nr = static_cast<int>(std::min<int64_t>(L.nr, N - p * L.nr));
          tile.n0 = p * L.nr;
          for (int64_t i = m0; i < m1; i += L.mr) {
            tile.mr = static_cast<int>(std::min<int64_t>(L.mr, m1 - i));
            tile.m0 = i;
            tile.c = args.C + i * args.ldc + p * L.nr;
            ks.lut(a + (i - m0) * lda, lda, kc, panel, tile);
          }
        }
      }
    }
  };
  pool.parallel_for_dynamic(tasks, [&body](int64_t b, int64_t e, int slot) { body(b, e, slot); }, 1, slots);
}

}  // namespace

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
  if (!use_bits && !args.b_packed) throw std::invalid_argument("gemm_run: no B operand");

  if (K == 0) {
    // Degenerate but well defined: every dot product is 0.
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n)
        args.C[m * args.ldc + n] = args.t ? apply_transform(*args.t, 0.0f, m, n) : 0.0f;
    return;
  }

  if (use_bits && args.b_lut && ks.lut && args.b_lut_isa == ks.isa &&
      (args.bits_strategy == BitsStrategy::lut ||
       (args.bits_strategy == BitsStrategy::automatic && prefer_lut(ks, M)))) {
    char* ws = static_cast<char*>(args.workspace);
    ws += (kAlignment - reinterpret_cast<uintptr_t>(ws) % kAlignment) % kAlignment;
    return run_lut(args, ks, ws, pool);
  }
  if (use_direct(args.A, ks)) {
    char* ws = static_cast<char*>(args.workspace);
    ws += (kAlignment - reinterpret_cast<uintptr_t>(ws) % kAlignment) % kAlignment;
    return run_direct(args, ks, ws, pool);
  }

  const int mr = ks.mr;
  const int64_t MC_max = static_cast<int64_t>(mr) * ks.mc_tiles;
  const int KC = ks.kc;
  const int64_t panels = (N + kNR - 1) / kNR;
  const int slots = std::min(pool.num_threads(), gemm_scratch_slots());
  const WorkSplit sp = split_work(M, panels, MC_max, mr, slots);
  const int64_t MC = sp.MC, n_chunks = sp.n_chunks, panels_per_chunk = sp.per_chunk;
  const int64_t tasks = sp.tasks();

  const size_t slot_bytes = max_slot_bytes();
  char* ws = static_cast<char*>(args.workspace);
  ws += (kAlignment - reinterpret_cast<uintptr_t>(ws) % kAlignment) % kAlignment;
  // lut where no LUT kernel or panel exists falls back to the automatic choice.
  const BitsStrategy forced = args.bits_strategy == BitsStrategy::lut ? BitsStrategy::automatic
                                                                      : args.bits_strategy;

  auto body = [&](int64_t t_begin, int64_t t_end, int slot) {
    float* a_buf = reinterpret_cast<float*>(ws + slot * slot_bytes);
    const int64_t a_buf_floats = MC_max * a_stride(KC);
    float* b_buf = a_buf + a_buf_floats;
    for (int64_t task = t_begin; task < t_end; ++task) {
      const int64_t mb = task / n_chunks, nc = task % n_chunks;
      const int64_t m0 = mb * MC, m1 = std::min(M, m0 + MC);
      const int64_t p0 = nc * panels_per_chunk, p1 = std::min(panels, p0 + panels_per_chunk);
      BitsStrategy strat = BitsStrategy::unpack;
      if (use_bits) strat = forced != BitsStrategy::automatic ? forced : choose_bits_strategy(ks, m1 - m0);
      if (strat == BitsStrategy::direct && !ks.bits) strat = BitsStrategy::unpack;
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

// AVX-512 VPOPCNTDQ micro-kernel: an MR x 32 tile held as MR x 4 zmm accumulators of
// 64-bit popcounts (8 output channels per register). Per K word: 4 weight loads, MR
// broadcasts of the activation word, then xor + vpopcntq + add per accumulator. No horizontal
// reduction is needed: each lane already is one output channel's count.
//
// Multi-block: one call runs the tile over several consecutive 32-channel weight blocks with
// the same rows, so short-K layers (1x1 convs, few channels) pay the per-tile setup (row
// pointers, padding-correction rows, the call) once per row panel instead of once per block.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

// GCC 12 reports the intentionally undefined lanes inside some AVX-512 intrinsics
// (_mm256_undefined_si256 and friends) as maybe-uninitialized once tiles are instantiated for
// several row counts; the values are fully defined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "bconv/bconv_kernels.h"
#include "hbn/dispatch_rows.h"

namespace hbn {
namespace detail {
namespace {

constexpr int kNV = 4;  // zmm per tile row: 32 output channels
constexpr int kMR = 6;  // 24 accumulators + 4 weight registers + temporaries fit in 32 zmm
// Narrow tile for layers of at most 16 output channels (SqueezeNet's squeeze 1x1s): 12 rows
// x 16 channels keeps the same 24 accumulators busy instead of half of a 32-wide tile.
constexpr int kNarrowMR = 12;
// 32-bit-lane tiles hold no accumulators: rows per call only amortise the call.
constexpr int kMR32 = 12;
// One-word tiles (tile1w) neither: 12 broadcast rows + 4 weight vectors stay in registers.
constexpr int kMR1W = 12;
// Fields of at most this many words run 12 rows per call (tile_short_any).
constexpr int kShortKw = 9;

inline __m512 opaque(__m512 v) {
  asm("" : "+v"(v));
  return v;
}

// Output stage variants, chosen per tile call: floats, bits by the float rule, bits by the
// integer threshold (TileArgs::ithr); the float-rule modes come in a plain form (no per-pixel
// scale, no residual: every FBin layer but XNOR-Net's and the residual-fused ones) and a
// general one, so the plain epilogue carries no per-vector tests for them.
enum Mode { kFloat, kBitsF, kBitsI, kFloatX, kBitsFX };
constexpr bool float_out(int mode) { return mode == kFloat || mode == kFloatX; }
constexpr bool general(int mode) { return mode == kFloatX || mode == kBitsFX; }

// Calls f with the tile call's output-stage mode as a std::integral_constant<int, Mode>: the
// one place a TileArgs picks its mode, for every tile shape below.
template <class F>
void with_mode(const TileArgs& t, F&& f) {
  using std::integral_constant;
  const bool gen = t.pixel_scale || t.res;
  if (t.out_f) return gen ? f(integral_constant<int, kFloatX>{}) : f(integral_constant<int, kFloat>{});
  if (t.ithr[0]) return f(integral_constant<int, kBitsI>{});
  return gen ? f(integral_constant<int, kBitsFX>{}) : f(integral_constant<int, kBitsF>{});
}

// Everything the output stage reads, in locals: the output stores could alias TileArgs
// otherwise, forcing a reload of every field after each store.
// R0: the tile's rows start at row R0 of the TileArgs (the second half of a tall short-K call).
template <int MR, int R0 = 0>
struct OutCtx {
  const int32_t* base[MR];
  const int32_t* ithr[MR];
  const float *scale, *bias, *thr, *pixel_scale;
  const int32_t* flipmask;
  float* out_f;
  word_t* out_b;
  int64_t out_rs;
  int rows, bit0;
  bool relu;
  const float* res;
  int64_t res_rs;
  bool res_relu;
  const TileArgs* t;

  explicit OutCtx(const TileArgs& a)
      : scale(a.scale), bias(a.bias), thr(a.thr), pixel_scale(shift(a.pixel_scale, 1)), flipmask(a.flipmask),
        out_f(shift(a.out_f, a.out_rs)), out_b(shift(a.out_b, a.out_rs)), out_rs(a.out_rs), rows(a.rows - R0),
        bit0(a.bit0), relu(a.relu), res(shift(a.res, a.res_rs)), res_rs(a.res_rs), res_relu(a.res_relu), t(&a) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      base[i] = a.base[R0 + i];
      ithr[i] = a.ithr[R0 + i];
    }
  }
  // Row R0 of a per-row array with rows `stride` apart (null stays null).
  template <class P>
  static P* shift(P* p, int64_t stride) {
    return R0 == 0 || !p ? p : p + R0 * stride;
  }

  // The output stage of channels [jo, jo + cols) (cols <= 16 * HALVES) of every row; pc(i, h)
  // returns row i's popcounts of channels jo + 16h.. as 16 int32 lanes.
  template <int HALVES, int MODE, class PC>
  inline void store(int jo, int cols, const PC& pc) const {
    if (MODE == kBitsI) return store_ithr<HALVES>(jo, cols, pc);
    // Whole tiles (all but a layer's last channel block) store without masks.
    if (cols >= 16 * HALVES) return store_rule<HALVES, MODE, true>(jo, cols, pc);
    store_rule<HALVES, MODE, false>(jo, cols, pc);
  }

  template <int HALVES, class PC>
  inline void store_ithr(int jo, int cols, const PC& pc) const {
    const int bitpos = bit0 + jo;  // output bits of these channels start here in the row
    word_t* const ob = out_b + bitpos / 64;
    const int sh = bitpos % 64;
    const uint32_t colbits = (cols >= 32 ? ~0u : ((1u << cols) - 1u)) & (HALVES == 2 ? ~0u : 0xFFFFu);
    const uint32_t inv = inv_bits32(*t, jo);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      if (i >= rows) break;
      uint32_t gt;
      if (HALVES == 2) {
        // kunpckwd joins the two masks in a mask register (one op for kmov, kmov, shift, or).
        gt = _cvtmask32_u32(_mm512_kunpackw(_mm512_cmpgt_epi32_mask(pc(i, 1), _mm512_loadu_si512(ithr[i] + jo + 16)),
                                            _mm512_cmpgt_epi32_mask(pc(i, 0), _mm512_loadu_si512(ithr[i] + jo))));
      } else {
        gt = _mm512_cmpgt_epi32_mask(pc(i, 0), _mm512_loadu_si512(ithr[i] + jo));
      }
      const word_t bits = static_cast<word_t>((gt ^ inv) & colbits) << sh;
      word_t& w = ob[i * out_rs];
      w = sh ? (w | bits) : bits;
    }
  }

  // The float rule: y = ((dot * scale) * pixel_scale) + bias, ReLU, + residual, ReLU, stored
  // as floats or compared with the threshold. The channel vectors (scale, bias, threshold) are
  // loaded once for all rows; a flipped channel's compare y > thr is written -y < -thr (the
  // sign flip is exact, and both are false for NaN), so each vector is one compare instead of
  // two compares and mask arithmetic.
  template <int HALVES, int MODE, bool FULL, class PC>
  inline void store_rule(int jo, int cols, const PC& pc) const {
    const int bitpos = bit0 + jo;
    word_t* const ob = out_b ? out_b + bitpos / 64 : nullptr;
    const int sh = bitpos % 64;
    const __m512 zero = _mm512_setzero_ps();
    __m512 sc[HALVES], bi[HALVES], th[HALVES];
    __m512i sgn[HALVES];
    __mmask16 mask[HALVES];
#pragma GCC unroll 2
    for (int h = 0; h < HALVES; ++h) {
      const int j = jo + 16 * h;
      sc[h] = _mm512_loadu_ps(scale + j);
      bi[h] = _mm512_loadu_ps(bias + j);
      const int c = cols - 16 * h;
      mask[h] = FULL || c >= 16 ? static_cast<__mmask16>(0xFFFF) : c <= 0 ? 0 : static_cast<__mmask16>((1u << c) - 1u);
      if (!float_out(MODE)) {
        sgn[h] = _mm512_and_si512(_mm512_loadu_si512(flipmask + j), _mm512_set1_epi32(INT32_MIN));
        th[h] = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(_mm512_loadu_ps(thr + j)), sgn[h]));
      }
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      if (i >= rows) break;
      uint32_t half_bits[2] = {0, 0};
#pragma GCC unroll 2
      for (int h = 0; h < HALVES; ++h) {
        const int j = jo + 16 * h;
        const __m512i dot = _mm512_sub_epi32(_mm512_loadu_si512(base[i] + j), _mm512_slli_epi32(pc(i, h), 1));
        __m512 y = _mm512_mul_ps(_mm512_cvtepi32_ps(dot), sc[h]);
        if (general(MODE) && pixel_scale) y = _mm512_mul_ps(opaque(y), _mm512_set1_ps(pixel_scale[i]));
        y = _mm512_add_ps(opaque(y), bi[h]);
        // max(y, 0) returns 0 for NaN and -0, as apply_transform's !(y > 0) does.
        if (relu) y = _mm512_max_ps(y, zero);
        if (general(MODE) && res) {
          y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask[h], res + i * res_rs + j));
          if (res_relu) y = _mm512_max_ps(y, zero);
        }
        if (float_out(MODE)) {
          float* o = out_f + i * out_rs + j;
          if (FULL) _mm512_storeu_ps(o, y);
          else _mm512_mask_storeu_ps(o, mask[h], y);
        } else {
          const __m512 ys = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(y), sgn[h]));
          half_bits[h] = static_cast<uint32_t>(_mm512_mask_cmp_ps_mask(mask[h], ys, th[h], _CMP_LT_OQ));
        }
      }
      if (!float_out(MODE)) {
        const word_t bits = (static_cast<word_t>(half_bits[0]) | (static_cast<word_t>(half_bits[1]) << 16)) << sh;
        word_t& w = ob[i * out_rs];
        w = sh ? (w | bits) : bits;
      }
    }
  }
};

template <int MR, int NV, int MODE, int R0 = 0>
void tile_avx512(const TileArgs& t) {
  constexpr int kCols = NV * 8;
  const OutCtx<MR, R0> out(t);
  const word_t* a0[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) a0[i] = t.a[R0 + i];
  const int64_t b_ks = t.b_ks, seg_len = t.seg_len, seg_stride = t.seg_stride, b_bs = t.b_bs;
  const int nseg = t.nseg, nblocks = t.nblocks, cols_all = t.cols;
  const __m512i lo_halves = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);

  for (int blk = 0; blk < nblocks; ++blk) {
    const int jo = blk * kBlockN;
    // The first K word initialises the accumulators (no zeroing, no add): on short fields
    // (SqueezeNet's 1-9 words) that is a tenth of a tile block's vector ops.
    __m512i acc[MR][NV];
    const word_t* b = t.b + blk * b_bs;
    {
      __m512i w[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) w[v] = _mm512_loadu_si512(b + v * 8);
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const __m512i x = _mm512_set1_epi64(static_cast<long long>(a0[i][0]));
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_popcnt_epi64(_mm512_xor_si512(x, w[v]));
      }
      b += b_ks;
    }
    for (int s = 0; s < nseg; ++s) {
      const word_t* a[MR];
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) a[i] = a0[i] + s * seg_stride;
      for (int64_t k = s == 0 ? 1 : 0; k < seg_len; ++k) {
        __m512i w[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) w[v] = _mm512_loadu_si512(b + v * 8);
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
          const __m512i x = _mm512_set1_epi64(static_cast<long long>(a[i][k]));
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v)
            acc[i][v] = _mm512_add_epi64(acc[i][v], _mm512_popcnt_epi64(_mm512_xor_si512(x, w[v])));
        }
        b += b_ks;
      }
    }
    // Counts fit in 32 bits: one permute gathers the low halves of 16 qword lanes.
    out.template store<NV / 2, MODE>(jo, std::min(kCols, cols_all - jo), [&](int i, int h) {
      return _mm512_permutex2var_epi32(acc[i][2 * h], lo_halves, acc[i][2 * h + 1]);
    });
  }
}

// 32-bit lanes: the whole receptive field is the low half of one word, so a channel's count
// is one vpopcntd of (activation xor weights), 16 channels per register, no accumulation
// and no lane compaction before the output stage.
template <int MR, int MODE>
void tile32_avx512(const TileArgs& t) {
  const OutCtx<MR> out(t);
  uint32_t a[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) a[i] = static_cast<uint32_t>(t.a[i][0]);
  const uint32_t* b32 = t.b32;
  const int nblocks = t.nblocks, cols_all = t.cols;
  for (int blk = 0; blk < nblocks; ++blk) {
    const int jo = blk * kBlockN;
    const __m512i w0 = _mm512_loadu_si512(b32 + jo), w1 = _mm512_loadu_si512(b32 + jo + 16);
    out.template store<2, MODE>(jo, std::min(kBlockN, cols_all - jo), [&](int i, int h) {
      return _mm512_popcnt_epi32(_mm512_xor_si512(_mm512_set1_epi32(static_cast<int>(a[i])), h ? w1 : w0));
    });
  }
}

// One-word receptive fields (kw == 1: 1x1 convs on 33-64 channels, SqueezeNet's expand1x1 of
// fire6-9; compact fields of 33-64 bits): nothing to accumulate, so no accumulators and no K
// loop. Each row's broadcast word stays in a register across the channel blocks, each block's
// 4 weight vectors are loaded once for all MR rows, and a row's 32 counts go straight to the
// output stage: 4 xor + 4 popcount + 2 permutes per row and block, against the main tile's
// zeroing, adds and loop per block of 6 rows.
template <int MR, int MODE>
void tile1w_avx512(const TileArgs& t) {
  const OutCtx<MR> out(t);
  __m512i x[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) x[i] = _mm512_set1_epi64(static_cast<long long>(t.a[i][0]));
  const __m512i lo_halves = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const int nblocks = t.nblocks, cols_all = t.cols;
  const int64_t b_bs = t.b_bs;
  for (int blk = 0; blk < nblocks; ++blk) {
    const int jo = blk * kBlockN;
    const word_t* b = t.b + blk * b_bs;
    __m512i w[kNV];
#pragma GCC unroll 4
    for (int v = 0; v < kNV; ++v) w[v] = _mm512_loadu_si512(b + v * 8);
    out.template store<2, MODE>(jo, std::min(kBlockN, cols_all - jo), [&](int i, int h) {
      return _mm512_permutex2var_epi32(_mm512_popcnt_epi64(_mm512_xor_si512(x[i], w[2 * h])), lo_halves,
                                       _mm512_popcnt_epi64(_mm512_xor_si512(x[i], w[2 * h + 1])));
    });
  }
}

// A partial last panel runs a shorter tile instead of computing rows it would throw away.
template <int MODE>
void tile_rows(const TileArgs& t) {
  dispatch_rows<kMR>(t.rows, [&](auto r) { tile_avx512<decltype(r)::value, kNV, MODE>(t); });
}

void tile_any(const TileArgs& t) {
  with_mode(t, [&](auto mode) { tile_rows<decltype(mode)::value>(t); });
}

// Short fields with bit outputs (BKernel::short_kw words or fewer: SqueezeNet's squeeze 1x1s
// and its 3x3s on 16-64 channels): 12 rows per call as two 6-row tiles, so the driver's
// per-call row setup and the tile's entry are paid once per 12 rows. Measured on Zen 5 against
// one 6-row tile per call: 0.85-0.96x on SqueezeNet's 2-5 word layers, 0.94x on a 9-word
// 64 -> 64 3x3 on 56x56, 0.96-0.99x on 7-9 word layers with 192-256 outputs; the weights and
// the A rows each half reads are the same, so larger fields only stop gaining. The driver
// keeps float outputs on the 6-row call (bconv_kernels.h, BKernel::tile_short).
template <int MODE>
void tile_short_rows(const TileArgs& t) {
  if (t.rows <= kMR) return tile_rows<MODE>(t);
  tile_avx512<kMR, kNV, MODE>(t);
  dispatch_rows<kMR>(t.rows - kMR, [&](auto r) { tile_avx512<decltype(r)::value, kNV, MODE, kMR>(t); });
}

void tile_short_any(const TileArgs& t) {
  with_mode(t, [&](auto mode) { tile_short_rows<decltype(mode)::value>(t); });
}

// Narrow tiles: a short last panel runs 4 or 8 rows (rows past t.rows repeat a real row and
// are not stored), which costs less code than one instantiation per row count.
template <int MODE>
void narrow_rows(const TileArgs& t) {
  dispatch_rows<kNarrowMR, 4>(t.rows, [&](auto r) { tile_avx512<decltype(r)::value, 2, MODE>(t); });
}

void narrow_any(const TileArgs& t) {
  with_mode(t, [&](auto mode) { narrow_rows<decltype(mode)::value>(t); });
}

// A short last panel runs 4 rows, else the full 12.
template <int MODE>
void tile32_rows(const TileArgs& t) {
  dispatch_rows<kMR32, 8, 4>(t.rows, [&](auto r) { tile32_avx512<decltype(r)::value, MODE>(t); });
}

void tile32_any(const TileArgs& t) {
  with_mode(t, [&](auto mode) { tile32_rows<decltype(mode)::value>(t); });
}

// A short last panel runs 4 or 8 rows, else the full 12.
template <int MODE>
void tile1w_rows(const TileArgs& t) {
  dispatch_rows<kMR1W, 4>(t.rows, [&](auto r) { tile1w_avx512<decltype(r)::value, MODE>(t); });
}

void tile1w_any(const TileArgs& t) {
  with_mode(t, [&](auto mode) { tile1w_rows<decltype(mode)::value>(t); });
}

}  // namespace

BKernel bkernel_avx512() {
  BKernel k{kMR, kNV * 8, tile_any, true, kNarrowMR, narrow_any, kMR32, tile32_any};
  k.mr1w = kMR1W;
  k.tile1w = tile1w_any;
  k.mr_short = 2 * kMR;
  k.tile_short = tile_short_any;
  k.short_kw = kShortKw;
  // The integer-threshold cut (BKernel::int_thr_rows). This output stage's float rule costs
  // ~7 vector ops more per 16 outputs than the integer compare (1.75 cycles on Zen 5's four
  // 512-bit pipes, 3.5 on Zen 4's double-pumped ones) against a derivation of 50-80 cycles
  // per channel per run, so the break-even is a row count: ~450-700 on Zen 5, ~230-360 on
  // Zen 4 (estimated; the previous epilogue's ~10 extra ops give ~150-250 on Zen 4, where 169
  // was measured neutral). Measured on Zen 5 (one thread, medians of 7 rounds): ResNet-18's
  // 3x3 256->256 on 14x14 (196 rows) 52 us with integer thresholds, 47 us by the float rule;
  // 128->128 on 28x28 (784 rows) 49-50 us either way; 64->128 stride 2 (784 rows) 27 vs 30 us;
  // 64->64 on 56x56 (3136 rows) 56 vs 60 us. The cut sits at Zen 4's low end, so no Zen 4
  // layer plausibly leaves the path where it wins; model layers are far on either side
  // (169/196 rows vs 729 and more).
  k.int_thr_rows = 256;
  return k;
}

}  // namespace detail
}  // namespace hbn

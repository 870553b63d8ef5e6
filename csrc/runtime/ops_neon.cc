// The fused row kernels (fused_kernels.h) over 16 lanes held in four q registers, the pooling
// rows built on them, and a 4-pixel NCHW pack: the "neon" row of the ops table. Every lane is
// the scalar definition's value (max as a compare + select, so NaN keeps the reference's
// `o < s ? s : o` choice; add exact; the pack rule as one eor + compare), bit for bit.
#include <arm_neon.h>

#include <cstring>

#include "runtime/fused_kernels.h"
#include "runtime/ops_kernels.h"
#include "runtime/pool_kernels.h"

namespace hbn {
namespace {

// 16 lanes: with 64-channel words a chunk's bits land in one word, and four independent
// registers per step keep both vector pipes busy.
struct V16 {
  static constexpr int L = 16;
  static constexpr int kRegs = 8;  // 32 q registers, four per reg
  using reg = float32x4x4_t;
  static reg load(const float* p, int64_t n) {
    if (n == L) return vld1q_f32_x4(p);
    float tmp[L] = {};
    std::memcpy(tmp, p, sizeof(float) * n);
    return vld1q_f32_x4(tmp);
  }
  static void store(float* p, const reg& r, int64_t n) {
    if (n == L) return vst1q_f32_x4(p, r);
    float tmp[L];
    vst1q_f32_x4(tmp, r);
    std::memcpy(p, tmp, sizeof(float) * n);
  }
  // (b < a) ? a : b per lane: b (the running max) survives an unordered compare.
  static reg max(const reg& a, const reg& b) {
    reg m;
    for (int q = 0; q < 4; ++q) m.val[q] = vbslq_f32(vcltq_f32(b.val[q], a.val[q]), a.val[q], b.val[q]);
    return m;
  }
  static reg add(const reg& a, const reg& b) {
    reg y;
    for (int q = 0; q < 4; ++q) y.val[q] = vaddq_f32(a.val[q], b.val[q]);
    return y;
  }
  // y > 0 ? y : +0 (NaN and -0 -> +0): keep the bits where the compare holds.
  static reg relu(const reg& y) {
    reg r;
    const float32x4_t zero = vdupq_n_f32(0.0f);
    for (int q = 0; q < 4; ++q)
      r.val[q] = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(y.val[q]), vcgtq_f32(y.val[q], zero)));
    return r;
  }
  // Lane i's compare mask kept at bit i, summed across lanes.
  static uint32_t bits(const reg& y, const float* sign, const float* thr) {
    static const uint32_t kWeight[16] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768};
    uint32x4_t acc = vdupq_n_u32(0);
    for (int q = 0; q < 4; ++q) {
      const float32x4_t yx = vreinterpretq_f32_u32(
          veorq_u32(vreinterpretq_u32_f32(y.val[q]), vld1q_u32(reinterpret_cast<const uint32_t*>(sign) + 4 * q)));
      acc = vorrq_u32(acc, vandq_u32(vcltq_f32(yx, vld1q_f32(thr + 4 * q)), vld1q_u32(kWeight + 4 * q)));
    }
    return vaddvq_u32(acc);
  }
};

void max_pool_rows_neon(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p, float* out,
                        int64_t b, int64_t e) {
  max_pool_fused_rows<V16>(in, h, w, c, p, out, nullptr, 0, b, e);
}

void avg_pool_rows_neon(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p, float* out,
                        int64_t b, int64_t e) {
  avg_pool_rows_impl(in, h, w, c, p, out, b, e);
}

void max_pool_fused_rows_neon(const float* in, int64_t h, int64_t w, int64_t c, const PoolParams& p,
                              float* out, const PackSink* s, int ns, int64_t b, int64_t e) {
  max_pool_fused_rows<V16>(in, h, w, c, p, out, s, ns, b, e);
}

void add_fused_rows_neon(const float* a, const float* b, int64_t c, bool relu, float* out, const PackSink* s,
                         int ns, int64_t r0, int64_t r1) {
  add_fused_rows<V16>(a, b, c, relu, out, s, ns, r0, r1);
}

// Four pixels per step: each channel's compare mask (all-ones lanes) is widened to two pairs of
// 64-bit lanes and and-ed with the channel's bit, so the four pixels' words build in registers.
void nchw_pack_pixels_neon(const float* in, int64_t c, int64_t cs, int64_t p0, int64_t p1, const PackSink& s,
                           word_t* out) {
  const int64_t words = words_for(c);
  const uint32_t* sign = reinterpret_cast<const uint32_t*>(s.sign);
  for (int64_t p = p0; p < p1; p += 4) {
    const int64_t n = std::min<int64_t>(4, p1 - p);
    for (int64_t k = 0; k < words; ++k) {
      uint64x2_t lo = vdupq_n_u64(0), hi = vdupq_n_u64(0), bit = vdupq_n_u64(1);
      const int64_t c1 = std::min<int64_t>(c, (k + 1) * kWordBits);
      for (int64_t ch = k * kWordBits; ch < c1; ++ch) {
        const float* src = in + ch * cs + p;
        float32x4_t x;
        if (n == 4) {
          x = vld1q_f32(src);
        } else {
          float tmp[4] = {};
          std::memcpy(tmp, src, sizeof(float) * n);
          x = vld1q_f32(tmp);
        }
        x = vreinterpretq_f32_u32(veorq_u32(vreinterpretq_u32_f32(x), vdupq_n_u32(sign[ch])));
        const int32x4_t m = vreinterpretq_s32_u32(vcltq_f32(x, vdupq_n_f32(s.thr_x[ch])));
        lo = vorrq_u64(lo, vandq_u64(bit, vreinterpretq_u64_s64(vmovl_s32(vget_low_s32(m)))));
        hi = vorrq_u64(hi, vandq_u64(bit, vreinterpretq_u64_s64(vmovl_s32(vget_high_s32(m)))));
        bit = vaddq_u64(bit, bit);
      }
      word_t* o = out + p * words + k;
      word_t tmp[4];
      vst1q_u64(tmp, lo);
      vst1q_u64(tmp + 2, hi);
      for (int64_t i = 0; i < n; ++i) o[i * words] = tmp[i];
    }
  }
}

}  // namespace

OpsKernels ops_kernels_scalar();

void max_pool_bits_rows_neon(const word_t* in, int64_t h, int64_t w, int64_t words, const PoolParams& p,
                             const word_t* or_mask, word_t* out, int64_t b, int64_t e) {
  max_pool_bits_rows_impl(in, h, w, words, p, or_mask, out, b, e);
}

// The NEON row; the 3-channel input layout keeps the scalar kernel (straight copies), and the
// average pool is the shared definition (its per-channel sums keep their order).
OpsKernels ops_kernels_neon() {
  OpsKernels k = ops_kernels_scalar();
  k.max_pool_rows = max_pool_rows_neon;
  k.avg_pool_rows = avg_pool_rows_neon;
  k.max_pool_fused_rows = max_pool_fused_rows_neon;
  k.add_fused_rows = add_fused_rows_neon;
  k.nchw_pack_pixels = nchw_pack_pixels_neon;
  k.max_pool_bits_rows = max_pool_bits_rows_neon;
  k.max_pool_rows_to = max_pool_rows_to<V16>;
  return k;
}

}  // namespace hbn

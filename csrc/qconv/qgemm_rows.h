// The element-wise parts of a qgemm row (the float output store and the input quantizer),
// written once here and compiled in each row's translation unit with that row's instruction
// set, where the compiler vectorises them. Every operation is exact or correctly rounded
// (int -> float conversion, one multiply, one add: no contraction, -ffp-contract=off), so every
// row computes the same bits as the scalar definitions (apply_transform, quantize_rows).
#pragma once
#include <cstdint>
#include <cstring>
#if defined(__AVX2__)
#include <immintrin.h>
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

#include "qconv/qgemm.h"

namespace hbn {
namespace qgemm {
// Internal linkage: each row's unit keeps its own copy, compiled with its flags (an inline
// function with external linkage would be merged into one copy by the linker).
namespace {

// acc[r][j] - zc[j] (mod 2^32: the true value fits in int32, qgemm.h), to float, times
// scale[j], plus bias[j], ReLU as `y > 0 ? y : 0`; jn (<= 16) channels of each row stored.
// A missing scale is 1 and a missing bias -0, which leave every value as apply_transform's.
inline void store_rows_impl(const int32_t* acc, int rows, int jn, const QStore& s, float* y, int64_t ldy) {
  for (int r = 0; r < rows; ++r) {
    float v[kQNR];
    for (int j = 0; j < kQNR; ++j) {
      const int32_t d = static_cast<int32_t>(static_cast<uint32_t>(acc[r * kQNR + j]) - static_cast<uint32_t>(s.zc[j]));
      float f = static_cast<float>(d) * s.scale[j];
      f = f + s.bias[j];
      v[j] = s.relu ? (f > 0.0f ? f : 0.0f) : f;
    }
    if (jn == kQNR)
      std::memcpy(y + r * ldy, v, sizeof v);
    else
      std::memcpy(y + r * ldy, v, sizeof(float) * static_cast<size_t>(jn));
  }
}

// The packed-bit output stage (QStoreBitsFn): store_rows_impl's float y in registers, compared
// with the thresholds as `y < thr` and `y > thr` (ordered: false for NaN, as threshold_bit),
// both turned into 16-bit lane masks (a mask compare on AVX-512, movemask on AVX2, a weighted
// add on NEON) and chosen per channel by the flip bits. (A float tile store followed by
// threshold_bit per element cost about as much again as the whole float-output conv.)
#if defined(__AVX512F__)
inline void bits_row(const int32_t* acc, const QStore& s, uint32_t& lt, uint32_t& gt) {
  const __m512i d = _mm512_sub_epi32(_mm512_loadu_si512(acc), _mm512_loadu_si512(s.zc));
  // The zero-masked form with every lane kept: _mm512_cvtepi32_ps passes an undefined vector
  // that GCC 12 reports as maybe-uninitialized.
  __m512 y = _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(0xffff, d), _mm512_loadu_ps(s.scale));
  y = _mm512_add_ps(y, _mm512_loadu_ps(s.bias));
  if (s.relu) y = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_GT_OQ), y);
  const __m512 t = _mm512_loadu_ps(s.thr);
  lt = _mm512_cmp_ps_mask(y, t, _CMP_LT_OQ);
  gt = _mm512_cmp_ps_mask(y, t, _CMP_GT_OQ);
}
#elif defined(__AVX2__)
inline void bits_row(const int32_t* acc, const QStore& s, uint32_t& lt, uint32_t& gt) {
  lt = gt = 0;
  for (int h = 0; h < 2; ++h) {
    const __m256i d = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + 8 * h)),
                                       _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.zc + 8 * h)));
    __m256 y = _mm256_mul_ps(_mm256_cvtepi32_ps(d), _mm256_loadu_ps(s.scale + 8 * h));
    y = _mm256_add_ps(y, _mm256_loadu_ps(s.bias + 8 * h));
    if (s.relu) y = _mm256_and_ps(_mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ), y);
    const __m256 t = _mm256_loadu_ps(s.thr + 8 * h);
    lt |= uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(y, t, _CMP_LT_OQ))) << (8 * h);
    gt |= uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(y, t, _CMP_GT_OQ))) << (8 * h);
  }
}
#elif defined(__ARM_NEON)
inline void bits_row(const int32_t* acc, const QStore& s, uint32_t& lt, uint32_t& gt) {
  static const uint32_t kWeights[4] = {1, 2, 4, 8};
  const uint32x4_t w = vld1q_u32(kWeights);
  lt = gt = 0;
  for (int q = 0; q < 4; ++q) {
    const int32x4_t d = vsubq_s32(vld1q_s32(acc + 4 * q), vld1q_s32(s.zc + 4 * q));
    float32x4_t y = vmulq_f32(vcvtq_f32_s32(d), vld1q_f32(s.scale + 4 * q));
    y = vaddq_f32(y, vld1q_f32(s.bias + 4 * q));
    if (s.relu) y = vbslq_f32(vcgtq_f32(y, vdupq_n_f32(0.0f)), y, vdupq_n_f32(0.0f));
    const float32x4_t t = vld1q_f32(s.thr + 4 * q);
    lt |= vaddvq_u32(vandq_u32(vcltq_f32(y, t), w)) << (4 * q);
    gt |= vaddvq_u32(vandq_u32(vcgtq_f32(y, t), w)) << (4 * q);
  }
}
#endif

inline void store_bits_impl(const int32_t* acc, int rows, int jn, const QStore& s, uint16_t* bits) {
#if defined(__AVX2__) || defined(__ARM_NEON)
  const uint32_t keep = jn >= kQNR ? 0xffffu : (1u << jn) - 1u;
  for (int r = 0; r < rows; ++r) {
    uint32_t lt, gt;
    bits_row(acc + r * kQNR, s, lt, gt);
    bits[r] = static_cast<uint16_t>(((gt & s.flip) | (lt & ~s.flip)) & keep);
  }
#else
  store_bits_scalar(acc, rows, jn, s, bits);
#endif
}

// q = clamp(nearbyint(x / in_scale) + in_zero, 0, 255), NaN -> 0. nearbyint by the 1.5 * 2^23
// trick: exact round-half-even in the default rounding mode for |v| < 2^22, which the clamp to
// +-512 guarantees (the result is clamped to 0..255 after adding in_zero <= 255, so values past
// +-512 clamp the same).
// In GCC vector types of the unit's native width (a wider type's compares and selects are
// lowered element by element): plain loops of this did not vectorise on AVX2 and SSE2 (a float
// select is control flow to the vectoriser under -ftrapping-math, and the float -> uint8
// narrowing defeated it too).
#if defined(__AVX512F__)
constexpr int kQW = 16;
#elif defined(__AVX2__)
constexpr int kQW = 8;
#else
constexpr int kQW = 4;  // SSE2, NEON
#endif
typedef float QFv __attribute__((vector_size(4 * kQW)));
typedef int32_t QIv __attribute__((vector_size(4 * kQW)));
typedef uint8_t QUv __attribute__((vector_size(kQW)));
typedef uint8_t QBv __attribute__((vector_size(4 * kQW)));  // a QIv's bytes

inline QUv quantize_v(QFv x, float in_scale, float in_zero) {
  const QFv lo = QFv{} - 512.0f, hi = QFv{} + 512.0f, zero = QFv{}, top = QFv{} + 255.0f;
  const QFv magic = QFv{} + 12582912.0f;  // 1.5 * 2^23
  QFv v = x / in_scale;
  v = v > lo ? v : lo;  // NaN -> -512 -> 0
  v = v < hi ? v : hi;
  v = (v + magic) - magic;
  v = v + in_zero;
  v = v > zero ? v : zero;
  v = v < top ? v : top;
  const QIv i = __builtin_convertvector(v, QIv);
#if defined(__AVX512F__)
  return __builtin_convertvector(i, QUv);  // VPMOVDB
#else
  // The low byte of each lane (little-endian), as one byte shuffle: GCC narrows a
  // __builtin_convertvector element by element here.
  const QBv b = reinterpret_cast<const QBv&>(i);
#if defined(__AVX2__)
  return __builtin_shufflevector(b, b, 0, 4, 8, 12, 16, 20, 24, 28);
#else
  return __builtin_shufflevector(b, b, 0, 4, 8, 12);
#endif
#endif
}

inline void quantize_impl(const float* x, int64_t count, float in_scale, int in_zero, uint8_t* q) {
  const float z = static_cast<float>(in_zero);
  int64_t i = 0;
  for (; i + kQW <= count; i += kQW) {
    QFv v;
    std::memcpy(&v, x + i, sizeof v);
    const QUv r = quantize_v(v, in_scale, z);
    std::memcpy(q + i, &r, sizeof r);
  }
  if (i < count) {  // the tail through a zero-filled vector
    const size_t n = static_cast<size_t>(count - i);
    QFv v{};
    std::memcpy(&v, x + i, sizeof(float) * n);
    const QUv r = quantize_v(v, in_scale, z);
    std::memcpy(q + i, &r, n);
  }
}

}  // namespace
}  // namespace qgemm
}  // namespace hbn

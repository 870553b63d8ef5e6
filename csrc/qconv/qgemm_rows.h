// The element-wise parts of a qgemm row (the float output store and the input quantizer),
// written once here and compiled in each row's translation unit with that row's instruction
// set, where the compiler vectorises them. Every operation is exact or correctly rounded
// (int -> float conversion, one multiply, one add: no contraction, -ffp-contract=off), so every
// row computes the same bits as the scalar definitions (apply_transform, quantize_rows).
#pragma once
#include <cstdint>
#include <cstring>

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

// q = clamp(nearbyint(x / in_scale) + in_zero, 0, 255), NaN -> 0. nearbyint by the 1.5 * 2^23
// trick: exact round-half-even in the default rounding mode for |v| < 2^22, which the clamp to
// +-512 guarantees (the result is clamped to 0..255 after adding in_zero <= 255, so values past
// +-512 clamp the same).
// 16 values at a time in GCC vector types, which each unit lowers to its own registers (one
// zmm, two ymm, four xmm or q registers): plain loops of this did not vectorise on AVX2 and
// SSE2 (a float select is control flow to the vectoriser under -ftrapping-math, and the float
// -> uint8 narrowing defeated it too).
typedef float QF16 __attribute__((vector_size(64)));
typedef int32_t QI16 __attribute__((vector_size(64)));
typedef uint8_t QU16 __attribute__((vector_size(16)));

inline QU16 quantize16(QF16 x, float in_scale, float in_zero) {
  const QF16 lo = QF16{} - 512.0f, hi = QF16{} + 512.0f, zero = QF16{}, top = QF16{} + 255.0f;
  const QF16 magic = QF16{} + 12582912.0f;  // 1.5 * 2^23
  QF16 v = x / in_scale;
  v = v > lo ? v : lo;  // NaN -> -512 -> 0
  v = v < hi ? v : hi;
  v = (v + magic) - magic;
  v = v + in_zero;
  v = v > zero ? v : zero;
  v = v < top ? v : top;
  return __builtin_convertvector(__builtin_convertvector(v, QI16), QU16);
}

inline void quantize_impl(const float* x, int64_t count, float in_scale, int in_zero, uint8_t* q) {
  const float z = static_cast<float>(in_zero);
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    QF16 v;
    std::memcpy(&v, x + i, sizeof v);
    const QU16 r = quantize16(v, in_scale, z);
    std::memcpy(q + i, &r, sizeof r);
  }
  if (i < count) {  // the tail through a zero-filled vector
    const size_t n = static_cast<size_t>(count - i);
    QF16 v{};
    std::memcpy(&v, x + i, sizeof(float) * n);
    const QU16 r = quantize16(v, in_scale, z);
    std::memcpy(q + i, &r, n);
  }
}

}  // namespace
}  // namespace qgemm
}  // namespace hbn

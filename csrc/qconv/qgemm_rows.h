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
inline void quantize_impl(const float* x, int64_t count, float in_scale, int in_zero, uint8_t* q) {
  const float magic = 12582912.0f;
  const float z = static_cast<float>(in_zero);
  for (int64_t i = 0; i < count; ++i) {
    float v = x[i] / in_scale;
    v = v > -512.0f ? v : -512.0f;  // NaN -> -512 -> 0
    v = v < 512.0f ? v : 512.0f;
    v = (v + magic) - magic;
    v += z;
    v = v > 0.0f ? v : 0.0f;
    v = v < 255.0f ? v : 255.0f;
    q[i] = static_cast<uint8_t>(static_cast<int32_t>(v));
  }
}

}  // namespace
}  // namespace qgemm
}  // namespace hbn

// The portable int8 peak loop: int32 multiply-accumulates of 8-bit values (the compiler's
// baseline vectorization of it, as the scalar qgemm row gets).
#include "peak/peak_impl.h"

namespace hbn {
namespace detail {
namespace {

double int8_scalar(int64_t iters) {
  int32_t x[8] = {200, 17, 3, 255, 128, 64, 9, 1}, w[8] = {-127, 5, 99, -3, 127, -64, 8, 77};
  uint32_t a[8] = {};  // wraps (defined), as the vector loops' int32 lanes do
  for (int64_t it = 0; it < iters; ++it) {
    asm volatile("" : : "r"(x), "r"(w) : "memory");  // x, w may have changed: reload them
    for (int j = 0; j < 8; ++j) a[j] += static_cast<uint32_t>(x[j] * w[j]);
  }
  double s = 0;
  for (uint32_t v : a) s += v;
  return s;
}

}  // namespace

PeakLoop peak_int8_scalar() { return {int8_scalar, 8.0}; }

}  // namespace detail
}  // namespace hbn

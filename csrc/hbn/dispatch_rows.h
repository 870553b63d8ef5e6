// The one way a kernel turns a run-time count (rows of a partial tile, sinks of a fused op)
// into a compile-time one: each count instantiates its own tile.
#pragma once
#include <type_traits>

namespace hbn {

// Calls f(std::integral_constant<int, R>{}) for the smallest R of R0, R0 + Step, ... that is
// >= rows, or R = MaxR when rows exceeds them all. With the defaults R runs 1, 2, ..., MaxR
// (a tile of `rows` rows); a larger Step trades code size for computing up to Step - 1 spare
// rows that are not stored.
template <int MaxR, int Step = 1, int R = Step, typename F>
inline void dispatch_rows(int rows, F&& f) {
  if constexpr (R >= MaxR) {
    f(std::integral_constant<int, MaxR>{});
  } else {
    if (rows <= R) return f(std::integral_constant<int, R>{});
    dispatch_rows<MaxR, Step, R + Step>(rows, f);
  }
}

}  // namespace hbn

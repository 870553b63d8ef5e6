// A max-pool fused into the conv that produces its input (fuse_plan.h, "Row pool"): the conv
// reports bands of final output pixels, band() pools the rows whose window lies inside a band
// while it is in cache, and rest() the pooled rows no band computed (windows across bands),
// after the conv. Each pooled row is computed once, from final conv rows, by the pool op's own
// row kernel, so the result is the unfused one bit for bit. Shared by the float conv and
// conv_q8.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "runtime/op.h"
#include "runtime/ops.h"

namespace hbn {

struct RowPoolBands {
  const OpImpl* op;
  const RunArgs* args;
  const PoolParams* p;
  int64_t oh, ow;      // conv output rows and columns per image
  uint8_t* done_flag;  // per pooled row: computed by band()

  // Scratch the conv adds for the flags: one per pooled row of a batch of n, bounded by the
  // conv's output rows (a max-pool's pad is at most half its kernel, so it has at most one row
  // more per image than its input, two with ceil mode).
  static size_t flag_bytes(int64_t n, int64_t conv_out_h) { return static_cast<size_t>(n * (conv_out_h + 2)) + 1; }

  void clear(int64_t n) const { std::memset(done_flag, 0, static_cast<size_t>(n * p->out_h)); }

  // Conv pixels [m0, m1) (rows of its NHWC output) are final: pool the rows whose window lies
  // inside them.
  void band(int64_t m0, int64_t m1) const {
    const int64_t r0 = (m0 + ow - 1) / ow, r1 = m1 / ow, ph = p->out_h;
    for (int64_t img = r0 / oh; img * oh < r1; ++img) {
      const int64_t h0 = std::max(r0, img * oh) - img * oh, h1 = std::min(r1, (img + 1) * oh) - img * oh;
      int64_t first = -1;
      for (int64_t oy = 0; oy <= ph; ++oy) {
        bool inside = false;
        if (oy < ph) {
          const auto [y0, y1] = p->rows(oy, oh);
          inside = y0 >= h0 && y1 <= h1;
        }
        if (inside && first < 0) first = oy;
        if (!inside && first >= 0) {
          op->run_pool_rows(*args, img * ph + first, img * ph + oy);
          std::memset(done_flag + img * ph + first, 1, static_cast<size_t>(oy - first));
          first = -1;
        }
      }
    }
  }
  // Pooled rows [b, e) that no band computed.
  void rest(int64_t b, int64_t e) const {
    for (int64_t q = b; q < e;) {
      if (done_flag[q]) {
        ++q;
        continue;
      }
      int64_t end = q;
      while (end < e && !done_flag[end]) ++end;
      op->run_pool_rows(*args, q, end);
      q = end;
    }
  }
};

}  // namespace hbn

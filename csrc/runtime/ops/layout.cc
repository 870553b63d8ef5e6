// Ops that move data without arithmetic: concat along channels (float rows, or packed bit rows
// joined word-wise when bit passing holds the operands as bits) and flatten in PyTorch's C,H,W
// order.
#include "runtime/op.h"

namespace hbn {
namespace {

class Concat : public OpImpl {
 public:
  explicit Concat(BuildCtx& c) {
    const ValueShape& first = c.in(0);
    c.out = first;
    c.out.c = 0;
    for (int k = 0; k < c.n_inputs(); ++k) {
      const ValueShape& s = c.in(k);
      if (s.h != first.h || s.w != first.w) c.fail("inputs differ in height/width");
      c.out.c += s.c;
      if (c.out.c > kMaxChannels) c.fail("too many channels");
    }
  }
  BitsOut bits_out() const override { return BitsOut::concat; }
  void run(const RunArgs& a) const override {
    const int64_t rows = a.n * in[0].h * in[0].w;
    int64_t off = 0;
    if (a.out_bits) {
      // operands end on word boundaries (checked when bit passing was planned)
      const int64_t out_words = words_for(out.c);
      for (int k = 0; k < a.n_in; ++k) {
        const int64_t wds = words_for(in[k].c);
        copy_words(reinterpret_cast<const word_t*>(a.in[k]), rows, wds, out_words, off,
                   reinterpret_cast<word_t*>(a.out), *a.pool);
        off += wds;
      }
      return;
    }
    for (int k = 0; k < a.n_in; ++k) {
      copy_channels(a.in_f(k), rows, in[k].c, out.c, off, a.out_f(), *a.pool);
      off += in[k].c;
    }
  }
};

class Flatten : public OpImpl {
 public:
  explicit Flatten(BuildCtx& c) { c.out = {c.in(0).per_image(), 1, 1, true}; }
  void run(const RunArgs& a) const override {
    const ValueShape& s = in[0];
    flatten_chw(a.in_f(0), a.n, s.c, s.h, s.w, a.out_f(), *a.pool);
  }
};

template <typename T>
std::unique_ptr<OpImpl> make(BuildCtx& c) {
  return std::make_unique<T>(c);
}

}  // namespace

const OpDef& op_def_concat() {
  static const OpDef d{{OpType::concat, "concat", "concat", 1, -1, {}, {}, "along channels (torch.cat dim 1)"},
                       make<Concat>};
  return d;
}

const OpDef& op_def_flatten() {
  static const OpDef d{{OpType::flatten, "flatten", "flatten", 1, 1, {}, {},
                        "`[N,C,H,W] -> [N, C*H*W]` in PyTorch's C,H,W order"},
                       make<Flatten>};
  return d;
}

}  // namespace hbn

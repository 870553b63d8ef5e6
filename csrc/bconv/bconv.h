// FullBinConv: binary weights x binary (bit-packed) activations, XNOR + popcount.
// Linear layers are the 1x1 case on a 1x1 map (rows = batch).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fconv/aligned.h"
#include "hbn/conv_geometry.h"
#include "hbn/threadpool.h"
#include "hbn/types.h"
#include "transform/output_transform.h"

namespace hbn {

// What an input bit stands for. Bit 1 always encodes the lower value (hbn/types.h): -1 in the
// default +-1 domain, 0 in the {0, 1} domain (a = 1 - bit), the input of e.g. sign(relu(x)),
// for which torch.sign(0) = 0. Weights are +-1 in both. Zero padding adds 0 in both.
enum class InputDomain : uint8_t { pm1 = 0, zero_one = 1 };

using BConsumedFn = std::function<void(const void* begin, size_t bytes)>;

// The packed form BConv2d runs on: one buffer of up to three parts, each at a 64-byte offset.
// It is also the bconv_panel32 weight layout of .hbn files (hbn/weight_layout.h,
// docs/format.md), so a loader can run a file's bytes in place.
//   panels  [ceil(OC/32)][kc][32] words: per block of 32 output channels, word k of every
//           channel's receptive field; kc = KH*KW*words(IC), or words(KH*KW*IC) in compact mode
//           (IC not a multiple of 64 and more than one tap: the fields' bits concatenated
//           without per-tap padding). Tail bits and channels past OC are 0.
//   prefix  [KH*KW][ceil(OC/32)*32] int32, only when the conv pads: entry (h-1)*KW + (w-1) is
//           P(h, w), the sum of the per-tap weight sums (IC - 2 * popcount) over taps
//           kh < h, kw < w (P(0, .) = P(., 0) = 0 is not stored), 0 past OC. An unpadded conv
//           never clips a window, so it needs none.
//   lane32  [ceil(OC/32)*32] uint32, only when a receptive field has <= 32 bits: each
//           channel's single panel word again as a 32-bit lane, for kernels that count 16
//           channels per register.
struct BConvPacked {
  bool compact = false;
  int64_t kc = 0, oc_pad = 0;
  size_t panels_off = 0, panels_bytes = 0;
  size_t prefix_off = 0, prefix_bytes = 0;  // 0 bytes: absent
  size_t lane32_off = 0, lane32_bytes = 0;  // 0 bytes: absent
  size_t total = 0;
};
BConvPacked bconv_packed_sizes(const ConvGeometry& g);  // g must be valid
// Packs canonical weight bits (the constructor's weight_bits) into dst, which has
// bconv_packed_sizes(g).total bytes aligned for word_t. consumed as in the constructor.
void bconv_pack(const ConvGeometry& g, const word_t* weight_bits, void* dst,
                const BConsumedFn& consumed = nullptr);
// The canonical weight bits of a packed form (for a kernel path that reads another layout).
std::vector<word_t> bconv_unpack(const ConvGeometry& g, const void* packed);
// Checks everything run() assumes of a packed form it did not pack itself: tail bits and
// channels past OC zero, prefix and lane32 consistent with the panels. Returns "" or what is
// wrong. Reads the whole buffer once, allocates O(KH*KW).
std::string bconv_check_packed(const ConvGeometry& g, const void* packed);

class BConv2d {
 public:
  // weight_bits: canonical layout [OC][KH][KW][words_for(IC)] in the hbn/types.h convention
  // (this is also the layout stored in .hbn files). Repacked here, once, into the layout
  // the micro-kernels read. consumed (optional) is called with growing prefixes of weight_bits
  // as the packing stops reading them (a loader releases mapped pages with it).
  BConv2d(const ConvGeometry& g, const word_t* weight_bits, const BConsumedFn& consumed = nullptr);
  // Runs on a packed form the caller owns (bconv_packed_sizes, e.g. a mapped model file) in
  // place: nothing is copied, and `packed` (aligned for word_t, checked with
  // bconv_check_packed) must outlive the object.
  static BConv2d view(const ConvGeometry& g, const void* packed);
  BConv2d(BConv2d&&) = default;
  BConv2d& operator=(BConv2d&&) = default;
  BConv2d(const BConv2d&) = delete;  // the part pointers would point into the source
  BConv2d& operator=(const BConv2d&) = delete;
  // Convenience: binarize float weights OIHW (sign(0) = +1) then as above.
  static BConv2d from_float(const ConvGeometry& g, const float* weight_oihw);

  const ConvGeometry& geometry() const { return g_; }
  // Bytes this object allocated for its packed form (0 for a view).
  size_t owned_bytes() const { return own_.size() * sizeof(word_t); }

  // The input domain changes only the run-time integer base and the output scale (the packed
  // weights are the same), so it is a setting of the built layer; pm1 unless set.
  void set_input_domain(InputDomain d);
  InputDomain input_domain() const { return domain_; }

  // For a caller whose transforms never change behind the same pointers (a loaded model's
  // vectors are immutable): bit outputs by integer thresholds then derive each channel's cut
  // (a few dozen scalar evaluations) once per transform instead of once per run. Allocates
  // O(out_channels) now, and only when a run of out_rows output rows (batch 1) takes that mode
  // on the kernel row selected now; other runs derive the cuts as without it.
  void keep_int_thresholds(int64_t out_rows);

  // Scratch bytes run() needs for a batch of n images of in_h x in_w (zero-padded input copy,
  // padding-correction tables, per-row offsets); run() itself allocates nothing.
  size_t workspace_bytes(int n, int in_h, int in_w) const;

  // in: packed NHWC activations [n][in_h][in_w][words_for(IC)].
  // Zero padding has PyTorch semantics: the padded *binarized* input is 0 (neither +1 nor -1),
  // so padded taps contribute nothing to the dot product.
  // Float mode: out is NHWC float [n][OH][OW][OC], transform applied.
  // Bit mode (t.out_threshold != null): out_bits is [n][OH][OW][words_for(OC)].
  // Float mode, rows_done (optional): called with [m0, m1) ranges of output rows (pixels) as they
  // are complete in `out`, each row exactly once, from the thread that finished them, while the
  // rows are still in cache (a caller packs copies of the rows for binary consumers there).
  using RowsDone = std::function<void(int64_t m0, int64_t m1)>;
  void run(const word_t* in, int n, int in_h, int in_w, const OutputTransform& t, float* out,
           void* workspace, ThreadPool& pool, const RowsDone* rows_done = nullptr) const;
  void run_bits(const word_t* in, int n, int in_h, int in_w, const OutputTransform& t,
                word_t* out_bits, void* workspace, ThreadPool& pool) const;

 private:
  // Shared body of run / run_bits: exactly one of out_f, out_b is non-null.
  void run_impl(const word_t* in, int n, int in_h, int in_w, const OutputTransform& t,
                float* out_f, word_t* out_b, void* workspace, ThreadPool& pool,
                const RowsDone* rows_done) const;

  BConv2d(const ConvGeometry& g, const BConvPacked& sizes, const void* packed);
  void attach(const BConvPacked& sizes, const void* packed);  // points the parts into packed

  ConvGeometry g_;
  InputDomain domain_ = InputDomain::pm1;
  // {0, 1} domain of an unpadded conv (no prefix table): each channel's total weight sum
  // (sum of its +-1 weights over the receptive field), which the base then needs.
  std::vector<int32_t> wtot_;
  bool compact_ = false;  // see BConvPacked
  int64_t kc_ = 0;        // words per receptive field (row of A) in the packed layout
  AlignedVector<word_t> own_;  // the packed form when packed here; empty for a view
  const word_t* packed_ = nullptr;        // panels
  const int32_t* tap_prefix_ = nullptr;   // null when the conv does not pad
  const uint32_t* packed32_ = nullptr;    // null unless fields have <= 32 bits
  // The NEON K-in-lanes layout (bconv_klanes.h), built at construction only when the row then
  // selected reads it and it pays for this geometry; kl_nseg_ segments of kl_len_ words. Always
  // owned: a second form beside the panels (the file's bconv_panel32 layout or own_).
  std::vector<word_t> packed_kl_;
  int kl_nseg_ = 0;
  int64_t kl_len_ = 0;
  // The integer-threshold bit mode's per-channel cut on the dot product (run_impl) depends on
  // the output transform only, not on the input: with keep_int_thresholds, kept from the run
  // that derived it, keyed by the transform's pointers. One run at a time uses it (busy), a
  // concurrent run of the same object derives its own in its workspace.
  struct IntThrCache {
    std::atomic<int> busy{0};
    bool valid = false, relu = false;
    int32_t dot_max = 0;
    const void* key[4] = {};   // the transform's scale, bias, out_threshold, out_flip
    std::vector<int32_t> cut;  // D per channel (padded to whole blocks)
    std::vector<word_t> inv;   // channels whose compare is inverted
  };
  std::unique_ptr<IntThrCache> ithr_cache_;
};

// Scalar reference: integer dot products, PyTorch zero-padding semantics (+-1 inputs, or {0, 1}
// inputs a = 1 - bit with InputDomain::zero_one). out: [n][OH][OW][OC] int32.
void bconv2d_reference(const ConvGeometry& g, const word_t* in, int n, int in_h, int in_w,
                       const word_t* weight_bits, int32_t* out, InputDomain domain = InputDomain::pm1);

}  // namespace hbn

// FullBinConv: binary weights x binary (bit-packed) activations, XNOR + popcount.
// Linear layers are the 1x1 case on a 1x1 map (rows = batch).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "hbn/conv_geometry.h"
#include "hbn/threadpool.h"
#include "hbn/types.h"
#include "transform/output_transform.h"

namespace hbn {

// What an input bit stands for. Bit 1 always encodes the lower value (hbn/types.h): -1 in the
// default +-1 domain, 0 in the {0, 1} domain (a = 1 - bit), the input of e.g. sign(relu(x)),
// for which torch.sign(0) = 0. Weights are +-1 in both. Zero padding adds 0 in both.
enum class InputDomain : uint8_t { pm1 = 0, zero_one = 1 };

class BConv2d {
 public:
  // weight_bits: canonical layout [OC][KH][KW][words_for(IC)] in the hbn/types.h convention
  // (this is also the layout stored in .hbn files). Repacked here, once, into the layout
  // the micro-kernels read. consumed (optional) is called with growing prefixes of weight_bits
  // as the packing stops reading them (a loader releases mapped pages with it).
  BConv2d(const ConvGeometry& g, const word_t* weight_bits,
          const std::function<void(const void* begin, size_t bytes)>& consumed = nullptr);
  // Convenience: binarize float weights OIHW (sign(0) = +1) then as above.
  static BConv2d from_float(const ConvGeometry& g, const float* weight_oihw);

  const ConvGeometry& geometry() const { return g_; }

  // The input domain changes only the run-time integer base and the output scale (the packed
  // weights are the same), so it is a setting of the built layer; pm1 unless set.
  void set_input_domain(InputDomain d) { domain_ = d; }
  InputDomain input_domain() const { return domain_; }

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

  ConvGeometry g_;
  InputDomain domain_ = InputDomain::pm1;
  // Compact mode (channels not a multiple of 64 and more than one tap): the KH*KW*C bits of a
  // receptive field are concatenated without per-tap word padding, so e.g. 16 channels x 3x3
  // taps are 3 words instead of 9; run() then gathers activation rows in that layout.
  bool compact_ = false;
  int64_t kc_ = 0;  // words per receptive field (row of A) in the packed layout
  // Implementation-defined packed weights and padding-correction tables.
  std::vector<word_t> packed_;      // [ceil(OC/32)][kc_][32], zero-padded channels
  // Receptive fields of at most 32 bits (e.g. 1x1 convs on <= 32 channels): the weights again
  // as 32-bit lanes, [ceil(OC/32) * 32], for kernels that count 16 channels per register.
  std::vector<uint32_t> packed32_;
  // The NEON K-in-lanes layout (bconv_klanes.h), built at construction only when the row then
  // selected reads it and it pays for this geometry; kl_nseg_ segments of kl_len_ words.
  std::vector<word_t> packed_kl_;
  int kl_nseg_ = 0;
  int64_t kl_len_ = 0;
  // [(KH+1)*(KW+1)][OC rounded up to 32]: 2-D prefix sums over (kh, kw) of the per-tap weight
  // sums (sum over channels of the +-1 weights, [OC][KH*KW], not kept), so the weight sum of any
  // rectangle of valid taps costs four lookups per channel.
  std::vector<int32_t> tap_prefix_;
};

// Scalar reference: integer dot products, PyTorch zero-padding semantics (+-1 inputs, or {0, 1}
// inputs a = 1 - bit with InputDomain::zero_one). out: [n][OH][OW][OC] int32.
void bconv2d_reference(const ConvGeometry& g, const word_t* in, int n, int in_h, int in_w,
                       const word_t* weight_bits, int32_t* out, InputDomain domain = InputDomain::pm1);

}  // namespace hbn

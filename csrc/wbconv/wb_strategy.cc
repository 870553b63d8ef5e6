#include "wbconv/wb_strategy.h"

#include "fconv/ukernel.h"
#include "wbconv/lut.h"

namespace hbn {
namespace sgemm_detail {

// Strategy for the binary-weight path, from benchmarks/bench_float_kernels.py on Zen 4 (one
// thread, % of the FMA peak measured in the same run, unpack vs direct):
//   256->256 3x3 on 14x14 (M=196, K=2304): AVX2 71% vs 91%, AVX-512 78% vs 84%
//   AlexNet conv2 (M=729, K=2400):          AVX2 78% vs 89%, AVX-512 78% vs 82%
//   fc 9216->4096 batch 1:                  ~3% vs 42% (AVX2), 50% (AVX-512)
//   fc 9216->4096 batch 16:                 ~31% vs 88% (AVX2), 79% (AVX-512)
// Decoding in registers costs a k-mask blend per 16 columns (AVX-512) or shift+and+or per 8
// (AVX2, on the integer pipes beside the FMAs), once per k step for the whole MR-row tile,
// while the unpacked panel costs a 32x larger B stream through L1 plus the decode pass, which a
// short M (batch-1 linear layers) never amortises. So x86 always decodes in registers.
// Where the NEON LUT kernel is not taken (a forced strategy), NEON decodes in registers only for
// blocks of at most one row tile, where an unpacked panel would be used once and thrown away,
// and otherwise unpacks, since its decode (test + select per 4 columns) is dearer relative to
// its 4-wide FMAs than AVX-512's. The scalar path has no decoder and always unpacks.
WBStrategy choose_bits_strategy(const KernelSet& ks, WBStrategy requested, int64_t rows_in_block) {
  WBStrategy s = requested;
  if (s != WBStrategy::unpack && s != WBStrategy::direct) {
    // automatic, or lut where no LUT kernel or panel runs: the measured choice.
    s = WBStrategy::direct;
    if (!ks.bits || (ks.unpack_tall_blocks && rows_in_block > ks.mr)) s = WBStrategy::unpack;
  }
  if (s == WBStrategy::direct && !ks.bits) s = WBStrategy::unpack;
  return s;
}

// Whether the automatic strategy takes the LUT kernel. AVX-512 always (LutKernel::always; see run_lut).
// NEON always too (lut_neon.cc), from the llvm-mca model per call (benchmarks/arm, docs/kernels.md):
// conv layers 1.5-2.5x the fp32 conv on Neoverse-N1 and 1.54-2.68x the sign-decoding FMA path,
// A55 1.00-1.79x that path; even at M = 1 (one useful pixel lane of four, fc 9216->4096) 1.61x
// (N1) and 1.68x (A55) the FMA path, so no row count favours the FMA kernels there. AVX2, on
// Zen 4 in G MACs/s, LUT vs decode + FMA: fc 9216->4096 batch 1 36-37 vs 24, but 3x3 convs
// (256->256 14x14, 512->512 7x7, 128->128 28x28) and 1x1 512->1000 on 13x13 51-53 vs 51-53:
// its 8-entry tables only pay where the FMA tiles are short.
bool prefer_lut(const LutKernel& lut, const KernelSet& ks, WBStrategy requested, int64_t M) {
  return requested == WBStrategy::lut || (requested == WBStrategy::automatic && (lut.always || M < ks.mr));
}

}  // namespace sgemm_detail
}  // namespace hbn

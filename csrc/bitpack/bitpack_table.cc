// The bit-packing table. Adding a row: one line here (and its declaration), the kernel in its
// own bitpack_<feature>.cc (docs/kernels.md).
#include "bitpack/bitpack_impl.h"

namespace hbn {
namespace detail {

void pack_rows_avx512(const float* in, int64_t rows, int channels, int64_t in_stride, word_t* out,
                      const float* thresholds, const uint8_t* flip);
void pack_rows_avx2(const float* in, int64_t rows, int channels, int64_t in_stride, word_t* out,
                    const float* thresholds, const uint8_t* flip);
void pack_rows_neon(const float* in, int64_t rows, int channels, int64_t in_stride, word_t* out,
                    const float* thresholds, const uint8_t* flip);
void pack_rows_portable(const float* in, int64_t rows, int channels, int64_t in_stride, word_t* out,
                        const float* thresholds, const uint8_t* flip);  // bitpack.cc

const KernelTable<PackRowsFn>& bitpack_kernels() {
  static const KernelTable<PackRowsFn> table("bitpack", {
      HBN_X86_ROW({kAvx512, "avx512", pack_rows_avx512})
      HBN_X86_ROW({kAvx2, "avx2", pack_rows_avx2})
      HBN_ARM64_ROW({kNeon, "neon", pack_rows_neon})
      {kNoFeatures, "scalar", pack_rows_portable},
  });
  return table;
}

}  // namespace detail
}  // namespace hbn

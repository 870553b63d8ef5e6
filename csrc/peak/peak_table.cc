// The peak-loop tables: one row per compiled loop, best first. Adding a row: one line here
// (and its declaration), the loop in its own peak_<feature>.cc.
#include "peak/peak_impl.h"

namespace hbn {
namespace detail {

PeakLoop peak_binary_avx512();       // peak_avx512.cc
PeakLoop peak_binary_avx2_lut();     // peak_avx2.cc
PeakLoop peak_binary_avx2_popcnt();  // peak_avx2.cc
PeakLoop peak_binary_neon();         // peak_neon.cc
PeakLoop peak_binary_scalar();       // peak.cc
PeakLoop peak_fma_avx512();
PeakLoop peak_fma_avx2();
PeakLoop peak_fma_neon();
PeakLoop peak_fma_scalar();
PeakLoop peak_int8_avx512vnni();  // peak_int8_avx512vnni.cc
PeakLoop peak_int8_avxvnni();     // peak_int8_avxvnni.cc
PeakLoop peak_int8_avx2();        // peak_int8_avx2.cc
PeakLoop peak_int8_dotprod();     // peak_int8_dotprod.cc
PeakLoop peak_int8_neon();        // peak_int8_neon.cc
PeakLoop peak_int8_scalar();      // peak_int8.cc

const KernelTable<PeakLoop>& peak_binary_loops() {
  static const KernelTable<PeakLoop> table("peak_binary", {
      HBN_X86_ROW({kAvx512, "avx512", peak_binary_avx512()})
      HBN_X86_ROW({kAvx2, "avx2_lut", peak_binary_avx2_lut()})
      HBN_X86_ROW({kAvx2, "avx2_popcnt", peak_binary_avx2_popcnt()})
      HBN_ARM64_ROW({kNeon, "neon", peak_binary_neon()})
      {kNoFeatures, "scalar", peak_binary_scalar()},
  });
  return table;
}

const KernelTable<PeakLoop>& peak_fma_loops() {
  static const KernelTable<PeakLoop> table("peak_fma", {
      HBN_X86_ROW({kAvx512, "avx512", peak_fma_avx512()})
      HBN_X86_ROW({kAvx2, "avx2", peak_fma_avx2()})
      HBN_ARM64_ROW({kNeon, "neon", peak_fma_neon()})
      {kNoFeatures, "scalar", peak_fma_scalar()},
  });
  return table;
}

// Rows named after the paths they measure, like peak_fma.
const KernelTable<PeakLoop>& peak_int8_loops() {
  static const KernelTable<PeakLoop> table("peak_int8", {
      HBN_X86_ROW({kAvx512Vnni, "avx512vnni", peak_int8_avx512vnni()})
      HBN_X86_ROW({kAvxVnni, "avxvnni", peak_int8_avxvnni()})
      HBN_X86_ROW({kAvx2, "avx2", peak_int8_avx2()})
      HBN_ARM64_ROW({kDotprod, "dotprod", peak_int8_dotprod()})
      HBN_ARM64_ROW({kNeon, "neon", peak_int8_neon()})
      {kNoFeatures, "scalar", peak_int8_scalar()},
  });
  return table;
}

}  // namespace detail
}  // namespace hbn

// Runtime CPU dispatch by instruction-set *features*, not levels. Each feature a kernel can
// require is one bit of a FeatureMask; a feature may imply others (avx512 implies avx2), and
// every mask this file hands out is closed under that relation. Kernel families pick from
// their own table (hbn/kernel_table.h) the best entry whose required features are all active,
// so a family without an entry for some feature keeps its best real entry.
//
// An "ISA path" is a name used to force dispatch (HBN_FORCE_ISA, hbn_engine.set_isa, the test
// loops): "scalar" (no features) or any feature name, meaning that feature and everything it
// implies. Forcing "avx2" on an AVX-512 machine leaves exactly the avx2 feature active.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace hbn {

using FeatureMask = uint32_t;

enum class Arch { x86, arm64 };

// THE list of features, written once; everything else (path names, Python's
// hbn_engine.supported_isas, the test loops, `hbn info`) is derived from it. Columns:
// identifier, name, the features it implies (closed transitively), the architecture whose
// build compiles it. Listed in preference order (a later feature is the faster path). Adding a
// feature: one line here, its detection rule in isa.cc (detect), its compiler flags in
// CMakeLists.txt (file suffix), then entries in the families that use it (docs/kernels.md).
//
// The two VNNI features are separate CPUID bits: AVX512-VNNI (EVEX VPDPBUSD, Ice Lake, Zen 4)
// and AVX-VNNI (VEX VPDPBUSD on ymm, Alder Lake, Sapphire Rapids, Zen 5... and Zen 4 has both).
// Neither implies the other, so a CPU with both has a feature mask no single path names;
// isa_name() then names the best path it contains (see there).
#define HBN_ISA_FEATURES(X)                          \
  X(kAvx2, "avx2", 0u, Arch::x86)                    \
  X(kAvxVnni, "avxvnni", kAvx2, Arch::x86)           \
  X(kAvx512, "avx512", kAvx2, Arch::x86)             \
  X(kAvx512Vnni, "avx512vnni", kAvx512, Arch::x86)   \
  X(kNeon, "neon", 0u, Arch::arm64)                  \
  X(kDotprod, "dotprod", kNeon, Arch::arm64)

namespace detail {
enum FeatureIndex : unsigned {
#define HBN_FEATURE_INDEX(id, name, implies, arch) id##_index,
  HBN_ISA_FEATURES(HBN_FEATURE_INDEX)
#undef HBN_FEATURE_INDEX
  kFeatureCount
};
}  // namespace detail

enum Feature : FeatureMask {
  kNoFeatures = 0,  // the portable ("scalar") path
#define HBN_FEATURE_BIT(id, name, implies, arch) id = FeatureMask{1} << detail::id##_index,
  HBN_ISA_FEATURES(HBN_FEATURE_BIT)
#undef HBN_FEATURE_BIT
};

struct FeatureInfo {
  FeatureMask bit;
  const char* name;
  FeatureMask implies;  // direct implications; feature_closure() follows them transitively
  Arch arch;
};

inline constexpr FeatureInfo kFeatures[] = {
#define HBN_FEATURE_INFO(id, name, implies, arch) {id, name, implies, arch},
    HBN_ISA_FEATURES(HBN_FEATURE_INFO)
#undef HBN_FEATURE_INFO
};
inline constexpr int kFeatureCount = detail::kFeatureCount;

// mask plus everything its features imply.
FeatureMask feature_closure(FeatureMask mask);
// "avx2+avx512" style list of the features in mask ("scalar" when empty).
std::string feature_names(FeatureMask mask);

// Features this build compiled kernels for (the architecture's features).
FeatureMask compiled_features();
// Features this binary was compiled for AND the CPU/OS can run: the best possible dispatch.
FeatureMask supported_features();
// Features kernels may use now: an override if one was set, else HBN_FORCE_ISA if set at first
// call, else supported_features(). An unsupported HBN_FORCE_ISA value is reported by
// isa_env_error() and ignored (the Python layer turns it into an exception).
FeatureMask active_features();

// ISA paths: "scalar" then every feature name, in kFeatures order (slowest first).
std::vector<std::string> isa_paths();
// The feature mask a path name stands for; false for an unknown name.
bool parse_isa(const std::string& name, FeatureMask* mask);
// True when every feature of the path is supported here.
bool isa_supported(const std::string& name);
// The path name of a feature mask: the last path whose mask equals it (e.g. "avx512"). A mask
// with features from two branches (Zen 4: avx512vnni and avxvnni) has no equal path; it is
// named by the last path it contains that every table ranks first among its rows (the
// avx512vnni rows precede the avxvnni ones), so the name still says which rows dispatch picks.
// feature_names() when no path is contained in it at all.
std::string isa_name(FeatureMask mask);
inline std::string best_isa() { return isa_name(supported_features()); }
inline std::string active_isa() { return isa_name(active_features()); }
// Forces a path; returns false (and changes nothing) when the name is unknown or unsupported.
bool set_isa(const std::string& name);
// Drops any override: back to HBN_FORCE_ISA / supported_features().
void reset_isa();
// Non-empty when HBN_FORCE_ISA held an unknown or unsupported value.
std::string isa_env_error();

// CPU feature flags as detected (independent of what was compiled in); `hbn info` prints them.
struct CpuFeatures {
  bool avx2 = false, fma = false, popcnt = false, bmi2 = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vpopcntdq = false;
  bool avx512vnni = false;  // EVEX VPDPBUSD (zmm)
  bool avxvnni = false;     // VEX VPDPBUSD (ymm)
  bool neon = false;
  bool dotprod = false;  // ARMv8.2 UDOT / SDOT (HWCAP_ASIMDDP)
};
const CpuFeatures& cpu_features();
std::string cpu_model_name();

}  // namespace hbn

// Runtime CPU dispatch. Detected once; HBN_FORCE_ISA (scalar|avx2|avx512|neon) or set_isa()
// forces a lower path so the tests can run every compiled path on one machine.
#pragma once
#include <string>

namespace hbn {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2, neon = 3 };

const char* isa_name(Isa isa);
// Parses "scalar", "avx2", "avx512", "neon"; returns false for anything else.
bool parse_isa(const std::string& name, Isa* out);

// True when this binary was compiled with the path AND the CPU/OS can run it.
bool isa_supported(Isa isa);
// The best supported path (ignores any override).
Isa best_isa();
// The path kernels use now: the override if one was set, else HBN_FORCE_ISA if set at first
// call, else best_isa(). An unsupported HBN_FORCE_ISA value is reported by
// isa_env_error() and ignored (the Python layer turns it into an exception).
Isa active_isa();
// Forces a path; returns false (and changes nothing) when the path is not supported.
bool set_isa(Isa isa);
// Drops any override: back to HBN_FORCE_ISA / best_isa().
void reset_isa();
// Non-empty when HBN_FORCE_ISA held an unknown or unsupported value.
std::string isa_env_error();

// CPU feature flags as detected (independent of what was compiled in).
struct CpuFeatures {
  bool avx2 = false, fma = false, popcnt = false, bmi2 = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vpopcntdq = false;
  bool neon = false;
};
const CpuFeatures& cpu_features();
std::string cpu_model_name();

}  // namespace hbn

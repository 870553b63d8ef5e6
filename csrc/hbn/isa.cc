#include "hbn/isa.h"

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>

#if defined(HBN_ARM64)
#include <sys/auxv.h>
#endif
#if defined(HBN_X86)
#include <cpuid.h>
#endif

namespace hbn {
namespace {

CpuFeatures detect_cpu() {
  CpuFeatures f;
#if defined(HBN_X86)
  __builtin_cpu_init();
  // __builtin_cpu_supports also checks that the OS saves the wide register state (XCR0).
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.popcnt = __builtin_cpu_supports("popcnt");
  f.bmi2 = __builtin_cpu_supports("bmi2");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512vpopcntdq = __builtin_cpu_supports("avx512vpopcntdq");
  f.avx512vnni = __builtin_cpu_supports("avx512vnni");
  // AVX-VNNI: CPUID leaf 7 subleaf 1, EAX bit 4, read directly (clang 14's
  // __builtin_cpu_supports has no name for it); its ymm state is the one avx2 already needs.
  // Subleaf 1 exists when subleaf 0's EAX (the highest subleaf) is at least 1.
  unsigned a = 0, b = 0, c = 0, d = 0;
  f.avxvnni = f.avx2 && __get_cpuid_count(7, 0, &a, &b, &c, &d) && a >= 1 &&
              __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 4) & 1u);
#elif defined(HBN_ARM64)
  f.neon = true;  // Advanced SIMD is mandatory on AArch64.
  // The kernel reports the dot-product instructions in AT_HWCAP (bit 20, HWCAP_ASIMDDP in
  // <asm/hwcap.h>, spelled out for C libraries that lack the name).
  f.dotprod = (getauxval(AT_HWCAP) & (1ul << 20)) != 0;
#endif
  return f;
}

// Which kernel features the CPU can run: the CPU flags each feature's translation units are
// compiled with (CMakeLists.txt) must all be present.
FeatureMask detect() {
  const CpuFeatures& f = cpu_features();
  FeatureMask m = 0;
  if (f.avx2 && f.fma && f.popcnt && f.bmi2) m |= kAvx2;
  if ((m & kAvx2) && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vpopcntdq) m |= kAvx512;
  if ((m & kAvx512) && f.avx512vnni) m |= kAvx512Vnni;
  if ((m & kAvx2) && f.avxvnni) m |= kAvxVnni;
  if (f.neon) m |= kNeon;
  if (f.neon && f.dotprod) m |= kDotprod;
  return feature_closure(m) & compiled_features();
}

// Override as mask + 1 (0 = none), so one atomic holds "no override" and "scalar" apart.
std::atomic<uint64_t> g_override{0};
std::once_flag g_env_once;
bool g_env_set = false;
FeatureMask g_env_mask = 0;
std::string g_env_error;

std::string path_list() {
  std::string s;
  for (const std::string& p : isa_paths()) s += (s.empty() ? "" : ", ") + p;
  return s;
}

void read_env() {
  const char* v = std::getenv("HBN_FORCE_ISA");
  if (!v || !*v) return;
  FeatureMask m;
  if (!parse_isa(v, &m)) {
    g_env_error = std::string("HBN_FORCE_ISA=") + v + " is not one of " + path_list();
  } else if (!isa_supported(v)) {
    g_env_error = std::string("HBN_FORCE_ISA=") + v + " is not supported on this CPU/build";
  } else {
    g_env_mask = m;
    g_env_set = true;
  }
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect_cpu();
  return f;
}

FeatureMask feature_closure(FeatureMask mask) {
  for (;;) {
    FeatureMask next = mask;
    for (const FeatureInfo& f : kFeatures)
      if (mask & f.bit) next |= f.implies;
    if (next == mask) return mask;
    mask = next;
  }
}

std::string feature_names(FeatureMask mask) {
  std::string s;
  for (const FeatureInfo& f : kFeatures)
    if (mask & f.bit) s += (s.empty() ? "" : "+") + std::string(f.name);
  return s.empty() ? "scalar" : s;
}

FeatureMask compiled_features() {
  FeatureMask m = 0;
  for (const FeatureInfo& f : kFeatures) {
#if defined(HBN_X86)
    if (f.arch == Arch::x86) m |= f.bit;
#elif defined(HBN_ARM64)
    if (f.arch == Arch::arm64) m |= f.bit;
#endif
    (void)f;
  }
  return m;
}

FeatureMask supported_features() {
  static const FeatureMask m = detect();
  return m;
}

std::vector<std::string> isa_paths() {
  std::vector<std::string> out{"scalar"};
  for (const FeatureInfo& f : kFeatures) out.emplace_back(f.name);
  return out;
}

bool parse_isa(const std::string& name, FeatureMask* mask) {
  if (name == "scalar") {
    *mask = kNoFeatures;
    return true;
  }
  for (const FeatureInfo& f : kFeatures)
    if (name == f.name) {
      *mask = feature_closure(f.bit);
      return true;
    }
  return false;
}

bool isa_supported(const std::string& name) {
  FeatureMask m;
  return parse_isa(name, &m) && (m & ~supported_features()) == 0;
}

std::string isa_name(FeatureMask mask) {
  std::string best, contained;
  for (const std::string& p : isa_paths()) {
    FeatureMask m = 0;
    parse_isa(p, &m);
    if (m == mask) best = p;
    if (m && (m & ~mask) == 0) contained = p;
  }
  if (!best.empty()) return best;
  return contained.empty() ? feature_names(mask) : contained;
}

FeatureMask active_features() {
  const uint64_t o = g_override.load(std::memory_order_relaxed);
  if (o) return static_cast<FeatureMask>(o - 1);
  std::call_once(g_env_once, read_env);
  if (g_env_set) return g_env_mask;
  return supported_features();
}

bool set_isa(const std::string& name) {
  FeatureMask m;
  if (!parse_isa(name, &m) || (m & ~supported_features())) return false;
  g_override.store(uint64_t{m} + 1, std::memory_order_relaxed);
  return true;
}

void reset_isa() { g_override.store(0, std::memory_order_relaxed); }

std::string isa_env_error() {
  std::call_once(g_env_once, read_env);
  return g_env_error;
}

std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0 || line.rfind("Model", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) {
        auto s = line.substr(p + 1);
        while (!s.empty() && s.front() == ' ') s.erase(s.begin());
        return s;
      }
    }
  }
  return "unknown";
}

}  // namespace hbn

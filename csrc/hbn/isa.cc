#include "hbn/isa.h"

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <mutex>

namespace hbn {
namespace {

CpuFeatures detect() {
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
#elif defined(HBN_ARM64)
  f.neon = true;  // Advanced SIMD is mandatory on AArch64.
#endif
  return f;
}

std::atomic<int> g_override{-1};
std::once_flag g_env_once;
int g_env_isa = -1;
std::string g_env_error;

void read_env() {
  const char* v = std::getenv("HBN_FORCE_ISA");
  if (!v || !*v) return;
  Isa isa;
  if (!parse_isa(v, &isa)) {
    g_env_error = std::string("HBN_FORCE_ISA=") + v + " is not one of scalar, avx2, avx512, neon";
  } else if (!isa_supported(isa)) {
    g_env_error = std::string("HBN_FORCE_ISA=") + v + " is not supported on this CPU/build";
  } else {
    g_env_isa = static_cast<int>(isa);
  }
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::neon: return "neon";
  }
  return "unknown";
}

bool parse_isa(const std::string& name, Isa* out) {
  for (Isa i : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::neon}) {
    if (name == isa_name(i)) {
      *out = i;
      return true;
    }
  }
  return false;
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::scalar: return true;
#if defined(HBN_X86)
    case Isa::avx2: return f.avx2 && f.fma && f.popcnt && f.bmi2;
    case Isa::avx512:
      return f.avx2 && f.fma && f.popcnt && f.bmi2 && f.avx512f && f.avx512bw && f.avx512vl &&
             f.avx512dq && f.avx512vpopcntdq;
#endif
#if defined(HBN_ARM64)
    case Isa::neon: return f.neon;
#endif
    default: return false;
  }
}

Isa best_isa() {
  for (Isa i : {Isa::avx512, Isa::avx2, Isa::neon}) {
    if (isa_supported(i)) return i;
  }
  return Isa::scalar;
}

Isa active_isa() {
  int o = g_override.load(std::memory_order_relaxed);
  if (o >= 0) return static_cast<Isa>(o);
  std::call_once(g_env_once, read_env);
  if (g_env_isa >= 0) return static_cast<Isa>(g_env_isa);
  return best_isa();
}

bool set_isa(Isa isa) {
  if (!isa_supported(isa)) return false;
  g_override.store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

void reset_isa() { g_override.store(-1, std::memory_order_relaxed); }

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

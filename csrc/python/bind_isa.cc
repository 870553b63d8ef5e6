#include <pybind11/stl.h>

#include <stdexcept>

#include "hbn/isa.h"
#include "hbn/threadpool.h"
#include "python/bindings.h"

namespace py = pybind11;

namespace hbn_py {

void register_isa(py::module_& m) {
  m.def("best_isa", [] { return std::string(hbn::isa_name(hbn::best_isa())); });
  m.def("active_isa", [] { return std::string(hbn::isa_name(hbn::active_isa())); });
  m.def("isa_supported", [](const std::string& name) {
    hbn::Isa isa;
    if (!hbn::parse_isa(name, &isa)) throw py::value_error("unknown ISA name: " + name);
    return hbn::isa_supported(isa);
  });
  m.def("set_isa", [](const std::string& name) {
    hbn::Isa isa;
    if (!hbn::parse_isa(name, &isa)) throw py::value_error("unknown ISA name: " + name);
    if (!hbn::set_isa(isa)) throw py::value_error("ISA " + name + " is not supported on this CPU/build");
  });
  m.def("reset_isa", &hbn::reset_isa);
  m.def("isa_env_error", &hbn::isa_env_error);
  m.def("cpu_model_name", &hbn::cpu_model_name);
  m.def("cpu_features", [] {
    const auto& f = hbn::cpu_features();
    py::dict d;
    d["avx2"] = f.avx2; d["fma"] = f.fma; d["popcnt"] = f.popcnt; d["bmi2"] = f.bmi2;
    d["avx512f"] = f.avx512f; d["avx512bw"] = f.avx512bw; d["avx512vl"] = f.avx512vl;
    d["avx512dq"] = f.avx512dq; d["avx512vpopcntdq"] = f.avx512vpopcntdq; d["neon"] = f.neon;
    return d;
  });
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("num_threads must be >= 1");
    hbn::default_pool().set_num_threads(n);
  });
  m.def("get_num_threads", [] { return hbn::default_pool().num_threads(); });
  m.attr("MAX_THREADS") = hbn::ThreadPool::kMaxThreads;
}

}  // namespace hbn_py

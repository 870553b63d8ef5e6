// Dispatch: ISA paths (hbn/isa.h) and the kernel tables (hbn/kernel_table.h), which the Python
// test loops, benchmarks and `hbn info` iterate.
#include <pybind11/stl.h>

#include "hbn/isa.h"
#include "hbn/kernel_table.h"
#include "hbn/threadpool.h"
#include "hbn/weight_layout.h"
#include "python/bindings.h"
#include "wbconv/wbconv.h"

namespace py = pybind11;

namespace hbn_py {
namespace {

const hbn::KernelFamily& family_arg(const std::string& name) {
  const hbn::KernelFamily* f = hbn::find_kernel_family(name);
  if (!f) throw py::value_error("unknown kernel family: " + name);
  return *f;
}

py::list feature_list(hbn::FeatureMask mask) {
  py::list out;
  for (const hbn::FeatureInfo& f : hbn::kFeatures)
    if (mask & f.bit) out.append(f.name);
  return out;
}

}  // namespace

void register_isa(py::module_& m) {
  m.def("isa_paths", &hbn::isa_paths, "Every ISA path name, slowest first: 'scalar', then one per feature.");
  m.def("best_isa", [] { return hbn::best_isa(); });
  m.def("active_isa", [] { return hbn::active_isa(); });
  m.def("active_features", [] { return feature_list(hbn::active_features()); });
  m.def("supported_features", [] { return feature_list(hbn::supported_features()); });
  m.def("isa_supported", [](const std::string& name) {
    hbn::FeatureMask mask;
    if (!hbn::parse_isa(name, &mask)) throw py::value_error("unknown ISA name: " + name);
    return hbn::isa_supported(name);
  });
  m.def("set_isa", [](const std::string& name) {
    hbn::FeatureMask mask;
    if (!hbn::parse_isa(name, &mask)) throw py::value_error("unknown ISA name: " + name);
    if (!hbn::set_isa(name)) throw py::value_error("ISA " + name + " is not supported on this CPU/build");
  });
  m.def("reset_isa", &hbn::reset_isa);
  m.def("wbin_native_layout", [] { return std::string(hbn::weight_layout_name(hbn::WBConv2d::native_layout())); },
        "The WeightBin kernel layout the selected ISA path runs in place ('wbin_bits32' or 'wbin_lut128g4').");
  m.def("isa_env_error", &hbn::isa_env_error);
  m.def("cpu_model_name", &hbn::cpu_model_name);
  m.def("cpu_features", [] {
    const auto& f = hbn::cpu_features();
    py::dict d;
    d["avx2"] = f.avx2; d["fma"] = f.fma; d["popcnt"] = f.popcnt; d["bmi2"] = f.bmi2;
    d["avx512f"] = f.avx512f; d["avx512bw"] = f.avx512bw; d["avx512vl"] = f.avx512vl;
    d["avx512dq"] = f.avx512dq; d["avx512vpopcntdq"] = f.avx512vpopcntdq; d["neon"] = f.neon;
    d["dotprod"] = f.dotprod; d["avx512vnni"] = f.avx512vnni; d["avxvnni"] = f.avxvnni;
    return d;
  });

  m.def(
      "kernel_tables",
      [] {
        py::dict out;
        for (const hbn::KernelFamily* f : hbn::kernel_families()) {
          const int selected = f->selected();
          py::list rows;
          for (int i = 0; i < f->size(); ++i) {
            py::dict r;
            r["name"] = f->entry_name(i);
            r["requires"] = feature_list(f->entry_requires(i));
            r["supported"] = f->entry_supported(i);
            r["selected"] = i == selected;
            rows.append(r);
          }
          out[f->name()] = rows;
        }
        return out;
      },
      "family -> its table rows, best first: name, requires (feature names), supported (this CPU "
      "and build), selected (what dispatch takes now).");
  m.def(
      "force_kernel",
      [](const std::string& family, const py::object& entry) {
        const hbn::KernelFamily& f = family_arg(family);
        if (entry.is_none()) return f.release();
        const std::string name = entry.cast<std::string>();
        if (f.find(name) < 0) throw py::value_error("kernel family " + family + " has no row " + name);
        if (!f.force(name)) throw py::value_error("kernel " + family + "/" + name + " is not supported on this CPU/build");
      },
      py::arg("family"), py::arg("entry"),
      "Force one row of a family's table regardless of the ISA path (tests, benchmarks); None releases it.");
  m.def(
      "kernel_exercised",
      [](const std::string& family, const std::string& entry) {
        const hbn::KernelFamily& f = family_arg(family);
        const int i = f.find(entry);
        if (i < 0) throw py::value_error("kernel family " + family + " has no row " + entry);
        return f.exercised(i);
      },
      py::arg("family"), py::arg("entry"), "Whether the row was dispatched since clear_kernel_exercised().");
  m.def("clear_kernel_exercised", [] {
    for (const hbn::KernelFamily* f : hbn::kernel_families()) f->clear_exercised();
  });

  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("num_threads must be >= 1");
    hbn::default_pool().set_num_threads(n);
  });
  m.def("get_num_threads", [] { return hbn::default_pool().num_threads(); });
  m.attr("MAX_THREADS") = hbn::ThreadPool::kMaxThreads;
}

}  // namespace hbn_py

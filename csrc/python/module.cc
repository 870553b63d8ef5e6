#include "python/bindings.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "hbn_engine native core (thin bindings over the C++ library in csrc/)";
  hbn_py::register_isa(m);
  hbn_py::register_binary(m);
  hbn_py::register_float(m);
  hbn_py::register_runtime(m);
  hbn_py::register_int8(m);
}

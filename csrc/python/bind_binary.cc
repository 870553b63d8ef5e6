#include "python/bindings.h"

namespace py = pybind11;

namespace hbn_py {

void register_binary(py::module_& m) {}

}  // namespace hbn_py

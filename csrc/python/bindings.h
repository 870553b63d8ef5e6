// Each kernel family registers its own bindings in its own file, so the binding layer stays a
// set of thin type conversions next to nothing else.
#pragma once
#include <pybind11/pybind11.h>

namespace hbn_py {
void register_isa(pybind11::module_& m);      // bind_isa.cc
void register_binary(pybind11::module_& m);   // bind_binary.cc: bit-packing, bgemm, bconv
void register_float(pybind11::module_& m);    // bind_float.cc: sgemm, float conv, binary-weight kernels
void register_runtime(pybind11::module_& m);
void register_int8(pybind11::module_& m);     // bind_int8.cc: 8-bit conv (qconv), int8 peak loop  // bind_runtime.cc: .hbn loader and graph executor
}  // namespace hbn_py

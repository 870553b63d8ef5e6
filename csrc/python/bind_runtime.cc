#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <system_error>
#include <memory>
#include <string>
#include <vector>

#include "python/bindings.h"
#include "runtime/executor.h"
#include "runtime/ops.h"

namespace py = pybind11;

namespace hbn_py {
namespace {

// The Python wrapper validates with friendly messages; these checks only keep a direct caller
// from handing the native code something it cannot read.
void check_input(const hbn::Executor& e, const py::array& x, int64_t strides[4]) {
  // by type number and byte order: a float32 dtype carrying metadata is another object
  const py::dtype dt = x.dtype();
  if (dt.num() != py::dtype::of<float>().num() || dt.byteorder() == '>')
    throw py::type_error("input must be float32");
  if (x.ndim() != 4) throw py::value_error("input must be 4-D NCHW");
  const auto& is = e.graph().input;
  if (x.shape(0) < 1 || x.shape(1) != is.c || x.shape(2) != is.h || x.shape(3) != is.w)
    throw py::value_error("input shape does not match the model");
  for (int d = 0; d < 4; ++d) {
    if (x.strides(d) % static_cast<py::ssize_t>(sizeof(float)) != 0)
      throw py::value_error("input strides must be multiples of 4 bytes");
    strides[d] = x.strides(d) / static_cast<py::ssize_t>(sizeof(float));
  }
}

// Shape and strides checked, then the values: ValueError on NaN or infinity.
void check_values(const py::array& x, const int64_t strides[4]) {
  const int64_t shape[4] = {x.shape(0), x.shape(1), x.shape(2), x.shape(3)};
  bool ok;
  {
    py::gil_scoped_release release;
    ok = hbn::all_finite(static_cast<const float*>(x.data()), shape, strides);
  }
  if (!ok) throw py::value_error("input contains NaN or infinity");
}

// What run() and profile() share: the input validated, its element strides, the output array.
struct Call {
  int64_t n = 0;
  int64_t strides[4] = {};
  py::array_t<float> out;
};

Call prepare_call(const hbn::Executor& e, const py::array& x) {
  Call c;
  check_input(e, x, c.strides);
  check_values(x, c.strides);
  c.n = x.shape(0);
  const std::vector<int64_t> shape = e.output_shape(c.n);
  c.out = py::array_t<float>(std::vector<py::ssize_t>(shape.begin(), shape.end()));
  return c;
}

// The op registry as plain Python data (hbn_engine.format builds its tables from it).
py::list op_schemas() {
  py::list out;
  for (const hbn::OpSchema* s : hbn::op_schemas()) {
    py::list slots, attrs;
    for (const auto& t : s->slots)
      slots.append(py::make_tuple(t.name, static_cast<uint32_t>(t.dtype), t.required, t.shape));
    for (const auto& a : s->attrs)
      attrs.append(py::make_tuple(hbn::attr_info(a.key)->name, a.required, a.lo, a.hi, a.dflt));
    py::dict d;
    d["code"] = static_cast<uint32_t>(s->type);
    d["name"] = s->name;
    d["kind"] = s->kind;
    d["min_inputs"] = s->min_inputs;
    d["max_inputs"] = s->max_inputs;
    d["slots"] = slots;
    d["attrs"] = attrs;
    d["doc"] = s->doc;
    out.append(d);
  }
  return out;
}

py::list attr_infos() {
  py::list out;
  for (const hbn::AttrInfo& a : hbn::attr_infos())
    out.append(py::make_tuple(static_cast<uint32_t>(a.key), a.name, static_cast<uint32_t>(a.type)));
  return out;
}

}  // namespace

void register_runtime(py::module_& m) {
  py::register_exception<hbn::FormatError>(m, "FormatError", PyExc_ValueError);
  m.def("op_schemas", &op_schemas, "Every op type of the .hbn format: code, name, kind, inputs, "
        "tensor slots (name, dtype code, required, shape), attributes (name, required, lo, hi, default)");
  m.def("attr_infos", &attr_infos, "Every attribute key of the .hbn format: (key, name, type code)");

  py::register_exception<hbn::ResourceLimitError>(m, "ResourceLimitError", m.attr("FormatError").ptr());

  py::class_<hbn::Limits>(m, "Limits")
      .def(py::init<>())
      .def_readwrite("max_arena_bytes", &hbn::Limits::max_arena_bytes)
      .def_readwrite("max_sample_arena_bytes", &hbn::Limits::max_sample_arena_bytes)
      .def_readwrite("max_macs_per_sample", &hbn::Limits::max_macs_per_sample)
      .def_readwrite("max_pool_reads_per_sample", &hbn::Limits::max_pool_reads_per_sample)
      .def_readwrite("max_kept_arena_bytes", &hbn::Limits::max_kept_arena_bytes);

  py::class_<hbn::Executor>(m, "Executor")
      .def(py::init([](py::bytes data, bool bit_passing, const hbn::Limits& limits) {
             char* p = nullptr;
             py::ssize_t len = 0;
             if (PyBytes_AsStringAndSize(data.ptr(), &p, &len) != 0) throw py::error_already_set();
             std::vector<uint8_t> buf(reinterpret_cast<uint8_t*>(p), reinterpret_cast<uint8_t*>(p) + len);
             py::gil_scoped_release release;
             return std::make_unique<hbn::Executor>(hbn::ModelBytes::from_vector(std::move(buf)),
                                                    bit_passing, limits);
           }),
           py::arg("data"), py::arg("bit_passing").noconvert() = true, py::arg("limits") = hbn::Limits{})
      .def_static("from_file", [](const std::string& path, bool bit_passing, const hbn::Limits& limits) {
        hbn::ModelBytes bytes;
        try {
          py::gil_scoped_release release;
          bytes = hbn::ModelBytes::map_file(path);
        } catch (const std::system_error& e) {
          // OSError(errno, message, filename): FileNotFoundError, PermissionError, ... as usual
          py::object err = py::module_::import("builtins").attr("OSError")(
              e.code().value(), e.code().message(), path);
          PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(err.ptr())), err.ptr());
          throw py::error_already_set();
        }
        py::gil_scoped_release release;
        return std::make_unique<hbn::Executor>(std::move(bytes), bit_passing, limits);
      }, py::arg("path"), py::arg("bit_passing").noconvert() = true, py::arg("limits") = hbn::Limits{})
      .def_property_readonly("format_version", &hbn::Executor::format_version)
      .def_property_readonly("metadata_json", [](const hbn::Executor& e) { return py::bytes(e.metadata_json()); })
      .def_property_readonly("param_bytes", &hbn::Executor::param_bytes)
      .def_property_readonly("in_place_bytes", &hbn::Executor::in_place_bytes)
      .def_property_readonly("arena_capacity", &hbn::Executor::arena_capacity)
      .def_property_readonly("work_per_sample", [](const hbn::Executor& e) {
        return py::make_tuple(e.work_per_sample().macs, e.work_per_sample().window_reads);
      })
      .def_property_readonly("input_shape", [](const hbn::Executor& e) {
        const auto& s = e.graph().input;
        return py::make_tuple(s.c, s.h, s.w);
      })
      .def_property_readonly("layers", [](const hbn::Executor& e) {
        std::vector<std::pair<std::string, std::string>> out;
        for (int i = 0; i < e.op_count(); ++i) out.emplace_back(e.op_name(i), e.op_kind(i));
        return out;
      })
      .def_property_readonly("bit_values", [](const hbn::Executor& e) {
        // names of ops whose output goes to the next binary layer as packed bits
        std::vector<std::string> out;
        const auto& nodes = e.graph().nodes;
        for (size_t i = 0; i < nodes.size(); ++i)
          if (e.value_is_bits(static_cast<int>(i) + 1)) out.push_back(nodes[i].name);
        return out;
      })
      .def_property_readonly("input_bits", [](const hbn::Executor& e) { return e.value_is_bits(0); })
      .def_property_readonly("packed_copies", [](const hbn::Executor& e) {
        // (name, copies) of ops that also write packed copies of their float output
        std::vector<std::pair<std::string, int>> out;
        const auto& nodes = e.graph().nodes;
        for (size_t i = 0; i < nodes.size(); ++i)
          if (int k = e.packed_copies(static_cast<int>(i))) out.emplace_back(nodes[i].name, k);
        return out;
      })
      .def_property_readonly("fused", [](const hbn::Executor& e) {
        // (absorbed op, op computing it) pairs of the fuse plan
        std::vector<std::pair<std::string, std::string>> out;
        const auto& nodes = e.graph().nodes;
        for (size_t i = 0; i < nodes.size(); ++i)
          if (int k = e.fused_into(static_cast<int>(i)); k >= 0) out.emplace_back(nodes[i].name, nodes[static_cast<size_t>(k)].name);
        return out;
      })
      .def_property_readonly("in_place", [](const hbn::Executor& e) {
        // convs that write their fused add's value over the residual (the residual dies there)
        std::vector<std::string> out;
        const auto& nodes = e.graph().nodes;
        for (size_t i = 0; i < nodes.size(); ++i)
          if (e.residual_in_place(static_cast<int>(i))) out.push_back(nodes[i].name);
        return out;
      })
      .def_property("num_threads", &hbn::Executor::num_threads, [](hbn::Executor& e, int n) {
        if (n < 1) throw py::value_error("num_threads must be >= 1");
        py::gil_scoped_release release;
        e.set_num_threads(n);
      })
      .def("output_shape", &hbn::Executor::output_shape, py::arg("n"))
      .def("planned_bytes", [](hbn::Executor& e, int64_t n) {
        if (n < 1) throw py::value_error("batch size must be >= 1");
        return e.planned_bytes(n);
      }, py::arg("n"))
      .def("profile", [](hbn::Executor& e, py::array x, int repeats) {
        if (repeats < 1) throw py::value_error("repeats must be >= 1");
        Call c = prepare_call(e, x);
        const int64_t n = c.n;
        const float* in = static_cast<const float*>(x.data());
        float* o = c.out.mutable_data();
        std::vector<double> times, totals;
        {
          py::gil_scoped_release release;
          e.profile(in, n, c.strides, o, repeats, times, totals);
        }
        const auto steps = static_cast<py::ssize_t>(e.op_count() + 2);
        py::array_t<double> t({static_cast<py::ssize_t>(repeats), steps});
        std::copy(times.begin(), times.end(), t.mutable_data());
        py::array_t<double> tot(static_cast<py::ssize_t>(repeats));
        std::copy(totals.begin(), totals.end(), tot.mutable_data());
        // (name, op type, kind, output shape for this batch) per op, in execution order
        py::list ops;
        for (int i = 0; i < e.op_count(); ++i) {
          const hbn::ValueShape& o = e.graph().nodes[static_cast<size_t>(i)].out;
          const std::string kind = e.op_kind(i);
          const bool conv = kind != e.op_type(i);  // only convolutions have a kind of their own
          py::tuple s = o.flat ? py::tuple(py::make_tuple(n, o.c)) : py::tuple(py::make_tuple(n, o.c, o.h, o.w));
          ops.append(py::make_tuple(e.op_name(i), e.op_type(i), conv ? kind : std::string("other"), s));
        }
        return py::make_tuple(ops, t, tot, c.out);
      }, py::arg("x"), py::arg("repeats"))
      .def("run", [](hbn::Executor& e, py::array x) {
        Call c = prepare_call(e, x);
        const float* in = static_cast<const float*>(x.data());
        float* o = c.out.mutable_data();
        {
          py::gil_scoped_release release;
          e.run(in, c.n, c.strides, o);
        }
        return c.out;
      }, py::arg("x"))
      .def_property_readonly("takes_pixels", &hbn::Executor::takes_pixels)
      .def("run_u8", [](hbn::Executor& e, py::array x) {
        // x: uint8 indexed NCHW (an NHWC buffer arrives as its transposed view, strides as is)
        const py::dtype dt = x.dtype();
        if (dt.num() != py::dtype::of<uint8_t>().num()) throw py::type_error("input must be uint8");
        if (x.ndim() != 4) throw py::value_error("input must be 4-D");
        const auto& is = e.graph().input;
        if (x.shape(0) < 1 || x.shape(1) != is.c || x.shape(2) != is.h || x.shape(3) != is.w)
          throw py::value_error("input shape does not match the model");
        int64_t strides[4];
        for (int d = 0; d < 4; ++d) strides[d] = x.strides(d);
        const int64_t n = x.shape(0);
        const std::vector<int64_t> shape = e.output_shape(n);
        py::array_t<float> out(std::vector<py::ssize_t>(shape.begin(), shape.end()));
        const uint8_t* in = static_cast<const uint8_t*>(x.data());
        float* o = out.mutable_data();
        {
          py::gil_scoped_release release;
          e.run_u8(in, n, strides, o);
        }
        return out;
      }, py::arg("x"));
}

}  // namespace hbn_py

// The one Python surface of every conv layer (BConv2d, Conv2dF32, WBConv2d): a layer built once
// (weights packed once) and run many times, with the same methods, arguments and properties:
//   run(x, scale=None, bias=None, pixel_scale=None, relu=False, out_threshold=None,
//       out_flip=None, threads=None)
//   time_run(x, iters=10, with_transform=True, threads=None)   best C++-timed run, seconds
//   workspace_bytes(n, h, w); in_channels, out_channels, kernel_size, stride, padding
// Only the binary conv writes bits (out_threshold); the float convs reject it.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <type_traits>
#include <vector>

#include "python/arrays.h"

namespace hbn_py {

template <class Layer, bool kPackedInput>
class PyConv {
 public:
  using In = std::conditional_t<kPackedInput, uint64_t, float>;
  static constexpr const char* kInputName = kPackedInput ? "x_packed" : "x";

  PyConv(const hbn::ConvGeometry& g, std::unique_ptr<Layer> layer) : g_(g), layer_(std::move(layer)) {}

  const hbn::ConvGeometry& geometry() const { return g_; }
  Layer& layer() { return *layer_; }
  size_t workspace_bytes(int n, int h, int w) const { return layer_->workspace_bytes(n, h, w); }

  py::array run(const py::object& xo, const py::object& scale, const py::object& bias,
                const py::object& pixel_scale, bool relu, const py::object& out_threshold,
                const py::object& out_flip, const py::object& threads) {
    hbn::ThreadPool& pool = pool_for(threads, own_pool_);
    const auto x = input(xo);
    const InputShape s = check_conv_input(x, g_, kPackedInput);
    const int OC = g_.out_channels;
    Transform tr(scale, bias, pixel_scale, relu, out_threshold, out_flip, OC, s.rows());
    const In* xp = x.data();
    void* ws = workspace_.get(layer_->workspace_bytes(s.n, s.h, s.w));
    if (tr.t.out_threshold) {
      if constexpr (kPackedInput) {
        py::array_t<uint64_t> out({s.n, s.oh, s.ow, static_cast<int>(hbn::words_for(OC))});
        hbn::word_t* op = reinterpret_cast<hbn::word_t*>(out.mutable_data());
        py::gil_scoped_release release;
        layer_->run_bits(xp, s.n, s.h, s.w, tr.t, op, ws, pool);
        return std::move(out);
      } else {
        throw py::value_error("out_threshold: only the binary conv writes bits (pack float outputs with pack_rows)");
      }
    }
    py::array_t<float> out({s.n, s.oh, s.ow, OC});
    float* op = out.mutable_data();
    py::gil_scoped_release release;
    layer_->run(xp, s.n, s.h, s.w, tr.t, op, ws, pool);
    return std::move(out);
  }

  double time_run(const py::object& xo, int iters, bool with_transform, const py::object& threads) {
    hbn::ThreadPool& pool = pool_for(threads, own_pool_);
    const auto x = input(xo);
    const InputShape s = check_conv_input(x, g_, kPackedInput);
    if (iters < 1) throw py::value_error("iters must be >= 1");
    const int OC = g_.out_channels;
    std::vector<float> out(static_cast<size_t>(s.rows() * OC)), scale(OC, 0.01f), bias(OC, 0.5f);
    hbn::OutputTransform t;
    if (with_transform) {
      t.scale = scale.data();
      t.bias = bias.data();
      t.act = hbn::Activation::relu;
    }
    void* ws = workspace_.get(layer_->workspace_bytes(s.n, s.h, s.w));
    const In* xp = x.data();
    py::gil_scoped_release release;
    double best = 1e30;
    for (int i = 0; i < iters; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      layer_->run(xp, s.n, s.h, s.w, t, out.data(), ws, pool);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  }

 private:
  // The input, checked: packed bits must have zero tail bits (K - 2*popcount counts them).
  py::array_t<In, py::array::c_style> input(const py::object& xo) const {
    auto x = expect<In>(xo, kInputName, 4);
    if constexpr (kPackedInput) {
      if (x.shape(3) == hbn::words_for(g_.in_channels)) check_tails(x, g_.in_channels, kInputName);
    }
    return x;
  }

  hbn::ConvGeometry g_;
  std::unique_ptr<Layer> layer_;
  Workspace workspace_;
  std::unique_ptr<hbn::ThreadPool> own_pool_;
};

// Adds the shared methods and properties to a conv class binding.
template <class C, class... Extra>
void def_conv_surface(py::class_<C, Extra...>& cls) {
  using py::arg;
  const auto none = py::none();
  cls.def("run", &C::run, arg(C::kInputName), arg("scale") = none, arg("bias") = none, arg("pixel_scale") = none,
          arg("relu") = false, arg("out_threshold") = none, arg("out_flip") = none, arg("threads") = none,
          "Output NHWC float32 [N, OH, OW, OC] with the transform applied, or (binary conv, "
          "out_threshold given) packed bits uint64 [N, OH, OW, words(OC)].")
      .def("time_run", &C::time_run, arg(C::kInputName), arg("iters") = 10, arg("with_transform") = true,
           arg("threads") = none,
           "Best wall time (s) of `iters` float-output runs (scale, bias, ReLU when with_transform) timed "
           "inside C++.")
      .def("workspace_bytes", &C::workspace_bytes, arg("n"), arg("h"), arg("w"))
      .def_property_readonly("in_channels", [](const C& c) { return c.geometry().in_channels; })
      .def_property_readonly("out_channels", [](const C& c) { return c.geometry().out_channels; })
      .def_property_readonly("kernel_size", [](const C& c) {
        return py::make_tuple(c.geometry().kernel_h, c.geometry().kernel_w);
      })
      .def_property_readonly("stride", [](const C& c) {
        return py::make_tuple(c.geometry().stride_h, c.geometry().stride_w);
      })
      .def_property_readonly("padding", [](const C& c) {
        return py::make_tuple(c.geometry().pad_h, c.geometry().pad_w);
      });
}

}  // namespace hbn_py

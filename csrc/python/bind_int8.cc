// Bindings for the 8-bit convolution (qconv/) and the int8 peak loop: conversions only; kernels
// run with the GIL released. Input and output are NHWC, as the other conv bindings.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <chrono>
#include <memory>

#include "peak/peak.h"
#include "python/arrays.h"
#include "python/bindings.h"
#include "qconv/qconv.h"

namespace hbn_py {
namespace {

using I8 = py::array_t<int8_t, py::array::c_style>;

class PyQConv {
 public:
  PyQConv(const py::object& wo, const py::object& stride, const py::object& padding, double in_scale, int in_zero) {
    const I8 w = expect<int8_t>(wo, "w", 4);
    g_ = conv_geometry(static_cast<int>(w.shape(1)), static_cast<int>(w.shape(0)), static_cast<int>(w.shape(2)),
                       static_cast<int>(w.shape(3)), stride, padding);
    const int8_t* p = w.data();
    for (py::ssize_t i = 0; i < w.size(); ++i)
      if (p[i] == -128) throw py::value_error("w values must be in -127..127");
    if (!(in_scale > 0) || !(static_cast<float>(in_scale) > 0)) throw py::value_error("in_scale must be > 0");
    if (in_zero < 0 || in_zero > 255) throw py::value_error("in_zero must be 0..255");
    try {
      conv_ = std::make_unique<hbn::QConv2d>(g_, p, static_cast<float>(in_scale), in_zero);
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  }

  // kind 0: float input (quantized inside), 1: uint8 input, 2: uint8 input -> int32 accumulators.
  py::array run(const py::object& xo, int kind, const py::object& scale, const py::object& bias, bool relu,
                const py::object& threads) {
    hbn::ThreadPool& pool = pool_for(threads, own_pool_);
    const py::array x = kind == 0 ? py::array(expect<float>(xo, "x", 4)) : py::array(expect<uint8_t>(xo, "q", 4));
    const InputShape s = check_conv_input(x, g_, false);
    const int OC = g_.out_channels;
    Transform tr(scale, bias, py::none(), relu, py::none(), py::none(), OC, s.rows());
    void* ws = workspace_.get(conv_->workspace_bytes(s.n, s.h, s.w));
    if (kind == 2) {
      py::array_t<int32_t> out({s.n, s.oh, s.ow, OC});
      int32_t* op = out.mutable_data();
      const uint8_t* q = static_cast<const uint8_t*>(x.data());
      py::gil_scoped_release release;
      conv_->run_acc(q, s.n, s.h, s.w, op, ws, pool);
      return std::move(out);
    }
    py::array_t<float> out({s.n, s.oh, s.ow, OC});
    float* op = out.mutable_data();
    py::gil_scoped_release release;
    if (kind == 0)
      conv_->run(static_cast<const float*>(x.data()), s.n, s.h, s.w, tr.t, op, ws, pool);
    else
      conv_->run_u8(static_cast<const uint8_t*>(x.data()), s.n, s.h, s.w, tr.t, op, ws, pool);
    return std::move(out);
  }

  // Best C++-timed run over iters (float input: quantization included), float output with a
  // scale + bias + ReLU transform (or packed bits: that output thresholded at 0.5, every third
  // channel flipped), seconds.
  double time_run(const py::object& xo, int iters, const py::object& threads, bool bits) {
    hbn::ThreadPool& pool = pool_for(threads, own_pool_);
    const bool f32 = py::isinstance<py::array>(xo) && py::reinterpret_borrow<py::array>(xo).dtype().is(py::dtype::of<float>());
    const py::array x = f32 ? py::array(expect<float>(xo, "x", 4)) : py::array(expect<uint8_t>(xo, "q", 4));
    const InputShape s = check_conv_input(x, g_, false);
    if (iters < 1) throw py::value_error("iters must be >= 1");
    const int OC = g_.out_channels;
    std::vector<float> out(static_cast<size_t>(s.rows() * OC)), scale(OC, 0.01f), bias(OC, 0.5f);
    hbn::OutputTransform t;
    t.scale = scale.data();
    t.bias = bias.data();
    t.act = hbn::Activation::relu;
    std::vector<float> thr(OC, 0.5f);
    std::vector<uint8_t> flip(OC, 0);
    for (int o = 0; o < OC; o += 3) flip[o] = 1;
    std::vector<hbn::word_t> bout(bits ? static_cast<size_t>(s.rows() * hbn::words_for(OC)) : 0);
    if (bits) t.out_threshold = thr.data(), t.out_flip = flip.data();
    void* ws = workspace_.get(conv_->workspace_bytes(s.n, s.h, s.w));
    const void* xp = x.data();
    py::gil_scoped_release release;
    double best = 1e30;
    for (int i = 0; i < iters; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      if (bits && f32)
        conv_->run_bits(static_cast<const float*>(xp), s.n, s.h, s.w, t, bout.data(), ws, pool);
      else if (bits)
        conv_->run_u8_bits(static_cast<const uint8_t*>(xp), s.n, s.h, s.w, t, bout.data(), ws, pool);
      else if (f32)
        conv_->run(static_cast<const float*>(xp), s.n, s.h, s.w, t, out.data(), ws, pool);
      else
        conv_->run_u8(static_cast<const uint8_t*>(xp), s.n, s.h, s.w, t, out.data(), ws, pool);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  }

  void set_path(const std::string& p) {
    if (p == "automatic") conv_->set_path(hbn::QConv2d::Path::automatic);
    else if (p == "im2col") conv_->set_path(hbn::QConv2d::Path::im2col);
    else if (p == "direct") conv_->set_path(hbn::QConv2d::Path::direct);
    else throw py::value_error("path must be 'automatic', 'im2col' or 'direct', not '" + p + "'");
  }
  bool uses_direct(int in_w) const { return conv_->uses_direct(in_w); }

 private:
  hbn::ConvGeometry g_;
  std::unique_ptr<hbn::QConv2d> conv_;
  Workspace workspace_;
  std::unique_ptr<hbn::ThreadPool> own_pool_;
};

}  // namespace

void register_int8(py::module_& m) {
  using py::arg;
  py::class_<PyQConv>(m, "QConv2d",
                      "8-bit conv (conv_q8's kernels): int8 weights [OC, IC, KH, KW] (-127..127); inputs "
                      "NHWC, float (quantized with in_scale / in_zero) or uint8")
      .def(py::init<const py::object&, const py::object&, const py::object&, double, int>(), arg("w"),
           arg("stride") = 1, arg("padding") = 0, arg("in_scale") = 1.0, arg("in_zero") = 0)
      .def("run", [](PyQConv& c, const py::object& x, const py::object& scale, const py::object& bias, bool relu,
                     const py::object& threads) { return c.run(x, 0, scale, bias, relu, threads); },
           arg("x"), arg("scale") = py::none(), arg("bias") = py::none(), arg("relu") = false,
           arg("threads") = py::none(), "float NHWC input -> float NHWC output")
      .def("run_u8", [](PyQConv& c, const py::object& q, const py::object& scale, const py::object& bias, bool relu,
                        const py::object& threads) { return c.run(q, 1, scale, bias, relu, threads); },
           arg("q"), arg("scale") = py::none(), arg("bias") = py::none(), arg("relu") = false,
           arg("threads") = py::none(), "uint8 NHWC input -> float NHWC output")
      .def("run_acc", [](PyQConv& c, const py::object& q, const py::object& threads) {
             return c.run(q, 2, py::none(), py::none(), false, threads); },
           arg("q"), arg("threads") = py::none(), "uint8 NHWC input -> the exact int32 accumulators")
      .def("time_run", &PyQConv::time_run, arg("x"), arg("iters") = 10, arg("threads") = py::none(),
           arg("bits") = false,
           "best of iters runs, seconds (float input includes its quantization; bits: packed-bit output)")
      .def("set_path", &PyQConv::set_path, arg("path"),
           "A source: 'automatic' (the shape rule), 'im2col' or 'direct' (where the shape and the active "
           "qgemm row allow it)")
      .def("uses_direct", &PyQConv::uses_direct, arg("in_w"),
           "whether a run on images in_w wide takes the direct path with the active qgemm row");
  m.def(
      "peak_int8_macs",
      [](const std::string& isa, double seconds) {
        py::gil_scoped_release release;
        return hbn::peak_int8_macs(isa, seconds);
      },
      arg("isa"), arg("seconds") = 0.2, "Register-resident u8 x s8 MAC peak of an ISA path, MACs/s on one thread.");
}

}  // namespace hbn_py

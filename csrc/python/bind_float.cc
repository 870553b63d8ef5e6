// Bindings for the float-input kernels: SGEMM, Conv2dF32 (FPrec) and WBConv2d (binary weights,
// float activations). Conversions only (python/arrays.h, python/conv_binding.h); kernels run
// with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>

#include "fconv/conv_f32.h"
#include "fconv/sgemm.h"
#include "python/arrays.h"
#include "python/bindings.h"
#include "python/conv_binding.h"
#include "wbconv/wbconv.h"

namespace hbn_py {
namespace {

using PyConvF32 = PyConv<hbn::Conv2dF32, false>;
using PyWBConv = PyConv<hbn::WBConv2d, false>;

hbn::ConvAlgo parse_algo(const std::string& s) {
  if (s == "auto") return hbn::ConvAlgo::automatic;
  if (s == "im2col") return hbn::ConvAlgo::im2col;
  if (s == "direct") return hbn::ConvAlgo::direct;
  throw py::value_error("algo must be 'auto', 'im2col' or 'direct', got '" + s + "'");
}

hbn::WBStrategy parse_strategy(const std::string& s) {
  if (s == "auto") return hbn::WBStrategy::automatic;
  if (s == "unpack") return hbn::WBStrategy::unpack;
  if (s == "direct") return hbn::WBStrategy::direct;
  if (s == "lut") return hbn::WBStrategy::lut;
  throw py::value_error("strategy must be 'auto', 'unpack', 'direct' or 'lut', got '" + s + "'");
}

hbn::ConvGeometry f32_geometry(const F32& w, const py::object& stride, const py::object& padding) {
  return conv_geometry(static_cast<int>(w.shape(1)), static_cast<int>(w.shape(0)), static_cast<int>(w.shape(2)),
                       static_cast<int>(w.shape(3)), stride, padding);
}

std::unique_ptr<PyConvF32> make_conv_f32(const py::object& wo, const py::object& stride, const py::object& padding,
                                         const std::string& algo) {
  const F32 w = expect<float>(wo, "w", 4);
  const hbn::ConvGeometry g = f32_geometry(w, stride, padding);
  auto layer = std::make_unique<hbn::Conv2dF32>(g, w.data());
  layer->set_algo(parse_algo(algo));
  return std::make_unique<PyConvF32>(g, std::move(layer));
}

std::unique_ptr<PyWBConv> make_wbconv(const py::object& bits_o, const py::object& in_channels, const py::object& stride,
                                      const py::object& padding, const std::string& strategy, const std::string& algo) {
  const U64 bits = expect<uint64_t>(bits_o, "weight_bits");
  const hbn::ConvGeometry g = bits_geometry(bits, in_channels, stride, padding);
  auto layer = std::make_unique<hbn::WBConv2d>(g, reinterpret_cast<const hbn::word_t*>(bits.data()));
  layer->set_strategy(parse_strategy(strategy));
  layer->set_algo(parse_algo(algo));
  return std::make_unique<PyWBConv>(g, std::move(layer));
}

// A reference conv (double accumulation) of x, then the scalar transform definition.
template <typename RefFn>
py::array_t<float> reference_conv(const hbn::ConvGeometry& g, const py::object& xo, const py::object& scale,
                                  const py::object& bias, const py::object& pixel_scale, bool relu, RefFn ref) {
  const F32 x = expect<float>(xo, "x", 4);
  const InputShape s = check_conv_input(x, g, false);
  const int64_t M = s.rows();
  Transform tr(scale, bias, pixel_scale, relu, py::none(), py::none(), g.out_channels, M);
  py::array_t<float> out({s.n, s.oh, s.ow, g.out_channels});
  float* o = out.mutable_data();
  const float* xp = x.data();
  py::gil_scoped_release release;
  ref(xp, s.n, s.h, s.w, o);
  for (int64_t m = 0; m < M; ++m)
    for (int oc = 0; oc < g.out_channels; ++oc)
      o[m * g.out_channels + oc] = hbn::apply_transform(tr.t, o[m * g.out_channels + oc], m, oc);
  return out;
}

struct PySgemm {
  std::unique_ptr<hbn::Sgemm> gemm;
  Workspace ws;

  explicit PySgemm(const py::object& b_in) {
    const F32 b = expect<float>(b_in, "b", 2);
    gemm = std::make_unique<hbn::Sgemm>(b.shape(0), b.shape(1), b.data(), b.shape(1));
  }
  py::array_t<float> run(const py::object& a_in, const py::object& scale, const py::object& bias, bool relu) {
    const F32 a = expect<float>(a_in, "a", 2);
    if (a.shape(1) != gemm->K())
      throw py::value_error("a has " + std::to_string(a.shape(1)) + " columns, b has " + std::to_string(gemm->K()) +
                            " rows");
    const int64_t M = a.shape(0), N = gemm->N();
    Transform tr(scale, bias, py::none(), relu, py::none(), py::none(), N, M);
    py::array_t<float> c({static_cast<py::ssize_t>(M), static_cast<py::ssize_t>(N)});
    float* cp = c.mutable_data();
    const float* ap = a.data();
    void* w = ws.get(hbn::Sgemm::workspace_bytes());
    py::gil_scoped_release release;
    gemm->run(M, ap, gemm->K(), tr.t, cp, N, w, hbn::default_pool());
    return c;
  }
};

}  // namespace

void register_float(py::module_& m) {
  using py::arg;
  const auto none = py::none();
  const auto one = py::make_tuple(1, 1), zero = py::make_tuple(0, 0);

  py::class_<PyConvF32> f32(m, "Conv2dF32",
                            "Float conv layer (weights OIHW float32, repacked once). algo: 'auto' | 'im2col' | "
                            "'direct' (input read in place).");
  f32.def(py::init(&make_conv_f32), arg("w"), arg("stride") = one, arg("padding") = zero, arg("algo") = "auto");
  def_conv_surface(f32);

  py::class_<PyWBConv> wb(m, "WBConv2d",
                          "WeightBinConv layer (weight_bits uint64 [OC, KH, KW, words]; in_channels default 64 * "
                          "words). strategy (sign decoding): 'auto' | 'unpack' | 'direct' | 'lut' (table lookups "
                          "where a LUT kernel runs, else as 'auto'); algo (input feeding): 'auto' | 'im2col' | "
                          "'direct'.");
  wb.def(py::init(&make_wbconv), arg("weight_bits"), arg("in_channels") = none, arg("stride") = one,
         arg("padding") = zero, arg("strategy") = "auto", arg("algo") = "auto");
  def_conv_surface(wb);

  py::class_<PySgemm>(m, "Sgemm", "C = A @ B with B [K, N] float32 packed once; run(a [M, K]).")
      .def(py::init<const py::object&>(), arg("b"))
      .def("run", &PySgemm::run, arg("a"), arg("scale") = none, arg("bias") = none, arg("relu") = false);

  m.def(
      "conv2d_f32",
      [](const py::object& x, const py::object& w, const py::object& stride, const py::object& padding,
         const py::object& scale, const py::object& bias, const py::object& ps, bool relu, const py::object& thr,
         const py::object& flip, const std::string& algo, const py::object& threads) {
        return make_conv_f32(w, stride, padding, algo)->run(x, scale, bias, ps, relu, thr, flip, threads);
      },
      arg("x"), arg("w"), arg("stride") = one, arg("padding") = zero, arg("scale") = none, arg("bias") = none,
      arg("pixel_scale") = none, arg("relu") = false, arg("out_threshold") = none, arg("out_flip") = none,
      arg("algo") = "auto", arg("threads") = none, "Conv2dF32(w, stride, padding, algo).run(x, ...) in one call.");
  m.def(
      "conv2d_f32_reference",
      [](const py::object& x, const py::object& wo, const py::object& stride, const py::object& padding,
         const py::object& scale, const py::object& bias, const py::object& ps, bool relu) {
        const F32 w = expect<float>(wo, "w", 4);
        const hbn::ConvGeometry g = f32_geometry(w, stride, padding);
        return reference_conv(g, x, scale, bias, ps, relu, [&](const float* xi, int n, int h, int wd, float* o) {
          hbn::conv2d_f32_reference(g, xi, n, h, wd, w.data(), o);
        });
      },
      arg("x"), arg("w"), arg("stride") = one, arg("padding") = zero, arg("scale") = none, arg("bias") = none,
      arg("pixel_scale") = none, arg("relu") = false, "Scalar reference of conv2d_f32 (double accumulation).");
  m.def(
      "wbconv2d",
      [](const py::object& x, const py::object& bits, const py::object& stride, const py::object& padding,
         const py::object& scale, const py::object& bias, const py::object& ps, bool relu, const py::object& thr,
         const py::object& flip, const py::object& in_channels, const std::string& strategy, const std::string& algo,
         const py::object& threads) {
        // in_channels None: the input's channel count.
        py::object ic = in_channels;
        if (ic.is_none()) ic = py::int_(expect<float>(x, "x", 4).shape(3));
        return make_wbconv(bits, ic, stride, padding, strategy, algo)->run(x, scale, bias, ps, relu, thr, flip, threads);
      },
      arg("x"), arg("weight_bits"), arg("stride") = one, arg("padding") = zero, arg("scale") = none,
      arg("bias") = none, arg("pixel_scale") = none, arg("relu") = false, arg("out_threshold") = none,
      arg("out_flip") = none, arg("in_channels") = none, arg("strategy") = "auto", arg("algo") = "auto",
      arg("threads") = none,
      "WBConv2d(weight_bits, in_channels, stride, padding, strategy, algo).run(x, ...) in one call: NHWC "
      "float32 x times +-1 weights bit-packed as uint64 [OC, KH, KW, words_for(IC)] (bit 1 = -1, channels LSB "
      "first); alpha goes in scale.");
  m.def(
      "wbconv2d_reference",
      [](const py::object& x, const py::object& bits_o, const py::object& stride, const py::object& padding,
         const py::object& scale, const py::object& bias, const py::object& ps, bool relu,
         const py::object& in_channels) {
        const U64 bits = expect<uint64_t>(bits_o, "weight_bits");
        py::object ic = in_channels;
        if (ic.is_none()) ic = py::int_(expect<float>(x, "x", 4).shape(3));
        const hbn::ConvGeometry g = bits_geometry(bits, ic, stride, padding);
        return reference_conv(g, x, scale, bias, ps, relu, [&](const float* xi, int n, int h, int wd, float* o) {
          hbn::wbconv2d_reference(g, xi, n, h, wd, reinterpret_cast<const hbn::word_t*>(bits.data()), o);
        });
      },
      arg("x"), arg("weight_bits"), arg("stride") = one, arg("padding") = zero, arg("scale") = none,
      arg("bias") = none, arg("pixel_scale") = none, arg("relu") = false, arg("in_channels") = none,
      "Scalar reference of wbconv2d (double accumulation).");
  m.def(
      "sgemm",
      [](const py::object& a, const py::object& b, const py::object& scale, const py::object& bias, bool relu) {
        return PySgemm(b).run(a, scale, bias, relu);
      },
      arg("a"), arg("b"), arg("scale") = none, arg("bias") = none, arg("relu") = false,
      "C[M,N] = A[M,K] @ B[K,N] (float32), fused scale/bias/ReLU per column.");
}

}  // namespace hbn_py

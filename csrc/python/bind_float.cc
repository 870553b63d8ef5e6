// Float-input kernels: SGEMM, Conv2dF32 (FPrec), WBConv2d (binary weights, float activations).
// Thin conversions only: numpy in/out, shapes and dtypes checked here (ValueError), the GIL
// released while the kernel runs on hbn::default_pool().
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "conv/conv_f32.h"
#include "hbn/threadpool.h"
#include "hbn/types.h"
#include "python/bindings.h"
#include "sgemm/sgemm.h"

namespace py = pybind11;

namespace hbn_py {

namespace {

using FloatArray = py::array_t<float, py::array::c_style>;
using WordArray = py::array_t<uint64_t, py::array::c_style>;
using Pair = std::pair<int, int>;

// Requires exactly float32 (no silent casts of float64 data) and returns a C-contiguous view.
FloatArray as_f32(const py::array& a, const char* name, int ndim) {
  if (!a.dtype().is(py::dtype::of<float>()))
    throw py::value_error(std::string(name) + " must be float32, got " + std::string(py::str(a.dtype())));
  if (ndim >= 0 && a.ndim() != ndim)
    throw py::value_error(std::string(name) + " must have " + std::to_string(ndim) + " dimensions, got " +
                          std::to_string(a.ndim()));
  return FloatArray::ensure(a);
}

WordArray as_words(const py::array& a, const char* name) {
  if (!a.dtype().is(py::dtype::of<uint64_t>()))
    throw py::value_error(std::string(name) + " must be uint64, got " + std::string(py::str(a.dtype())));
  if (a.ndim() != 4) throw py::value_error(std::string(name) + " must be [OC, KH, KW, words]");
  return WordArray::ensure(a);
}

struct AlignedWorkspace {
  explicit AlignedWorkspace(size_t bytes)
      : p(std::aligned_alloc(hbn::kAlignment, (bytes + hbn::kAlignment) / hbn::kAlignment * hbn::kAlignment)) {
    if (!p) throw std::bad_alloc();
  }
  ~AlignedWorkspace() { std::free(p); }
  AlignedWorkspace(const AlignedWorkspace&) = delete;
  AlignedWorkspace& operator=(const AlignedWorkspace&) = delete;
  void* p;
};

// Owns the optional transform vectors for one call.
struct Transform {
  FloatArray scale, bias, pixel_scale;
  hbn::OutputTransform t;
  Transform(const std::optional<py::array>& s, const std::optional<py::array>& b,
            const std::optional<py::array>& ps, bool relu, int64_t n_out, int64_t m_rows) {
    if (s) {
      scale = as_f32(*s, "scale", 1);
      if (scale.shape(0) != n_out) throw py::value_error("scale must have one value per output channel");
      t.scale = scale.data();
    }
    if (b) {
      bias = as_f32(*b, "bias", 1);
      if (bias.shape(0) != n_out) throw py::value_error("bias must have one value per output channel");
      t.bias = bias.data();
    }
    if (ps) {
      pixel_scale = as_f32(*ps, "pixel_scale", 1);
      if (pixel_scale.shape(0) != m_rows)
        throw py::value_error("pixel_scale must have one value per output pixel (N*OH*OW)");
      t.pixel_scale = pixel_scale.data();
    }
    t.act = relu ? hbn::Activation::relu : hbn::Activation::none;
  }
};

hbn::ConvGeometry geometry(int ic, int oc, int kh, int kw, Pair stride, Pair padding) {
  if (stride.first < 1 || stride.second < 1) throw py::value_error("stride must be >= 1");
  if (padding.first < 0 || padding.second < 0) throw py::value_error("padding must be >= 0");
  if (ic < 1 || oc < 1 || kh < 1 || kw < 1) throw py::value_error("empty weight tensor");
  hbn::ConvGeometry g;
  g.in_channels = ic; g.out_channels = oc; g.kernel_h = kh; g.kernel_w = kw;
  g.stride_h = stride.first; g.stride_w = stride.second;
  g.pad_h = padding.first; g.pad_w = padding.second;
  return g;
}

struct InputShape {
  int n, h, w, oh, ow;
};

InputShape check_input(const FloatArray& x, const hbn::ConvGeometry& g) {
  if (x.shape(3) != g.in_channels)
    throw py::value_error("x has " + std::to_string(x.shape(3)) + " channels (NHWC), weights expect " +
                          std::to_string(g.in_channels));
  InputShape s{static_cast<int>(x.shape(0)), static_cast<int>(x.shape(1)), static_cast<int>(x.shape(2)), 0, 0};
  if (s.h < 1 || s.w < 1) throw py::value_error("x must have a non-empty spatial size");
  if (s.h + 2 * g.pad_h < g.kernel_h || s.w + 2 * g.pad_w < g.kernel_w)
    throw py::value_error("input (with padding) is smaller than the kernel");
  s.oh = g.out_h(s.h);
  s.ow = g.out_w(s.w);
  return s;
}

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

// A float conv layer built once (weights repacked) and run many times.
template <typename Layer>
struct PyConv {
  hbn::ConvGeometry g;
  std::unique_ptr<Layer> layer;
  // Grown on demand: the direct path's workspace depends on the image size. Guarded by the
  // GIL (taken again before the next call can resize it).
  mutable std::unique_ptr<AlignedWorkspace> ws;
  mutable size_t ws_bytes = 0;

  py::array_t<float> run(const py::array& x_in, const std::optional<py::array>& scale,
                         const std::optional<py::array>& bias, bool relu,
                         const std::optional<py::array>& pixel_scale) const {
    const FloatArray x = as_f32(x_in, "x", 4);
    const InputShape s = check_input(x, g);
    const int64_t M = static_cast<int64_t>(s.n) * s.oh * s.ow;
    Transform tr(scale, bias, pixel_scale, relu, g.out_channels, M);
    py::array_t<float> out({static_cast<py::ssize_t>(s.n), static_cast<py::ssize_t>(s.oh),
                            static_cast<py::ssize_t>(s.ow), static_cast<py::ssize_t>(g.out_channels)});
    float* o = out.mutable_data();
    const float* xi = x.data();
    const size_t need = layer->workspace_bytes(s.n, s.h, s.w);
    if (!ws || need > ws_bytes) {
      ws = std::make_unique<AlignedWorkspace>(need);
      ws_bytes = need;
    }
    {
      py::gil_scoped_release release;
      layer->run(xi, s.n, s.h, s.w, tr.t, o, ws->p, hbn::default_pool());
    }
    return out;
  }
};

using PyConvF32 = PyConv<hbn::Conv2dF32>;
using PyWBConv = PyConv<hbn::WBConv2d>;

std::unique_ptr<PyConvF32> make_conv_f32(const py::array& w_in, Pair stride, Pair padding,
                                         const std::string& algo) {
  const FloatArray w = as_f32(w_in, "w", 4);
  auto c = std::make_unique<PyConvF32>();
  c->g = geometry(static_cast<int>(w.shape(1)), static_cast<int>(w.shape(0)), static_cast<int>(w.shape(2)),
                  static_cast<int>(w.shape(3)), stride, padding);
  c->layer = std::make_unique<hbn::Conv2dF32>(c->g, w.data());
  c->layer->set_algo(parse_algo(algo));
  return c;
}

hbn::ConvGeometry wb_geometry(const WordArray& bits, int in_channels, Pair stride, Pair padding) {
  const hbn::ConvGeometry g = geometry(in_channels, static_cast<int>(bits.shape(0)), static_cast<int>(bits.shape(1)),
                                       static_cast<int>(bits.shape(2)), stride, padding);
  if (bits.shape(3) != hbn::words_for(in_channels))
    throw py::value_error("weight_bits has " + std::to_string(bits.shape(3)) + " words per tap, " +
                          std::to_string(in_channels) + " channels need " +
                          std::to_string(hbn::words_for(in_channels)));
  return g;
}

std::unique_ptr<PyWBConv> make_wbconv(const py::array& bits_in, int in_channels, Pair stride, Pair padding,
                                      const std::string& strategy, const std::string& algo) {
  const WordArray bits = as_words(bits_in, "weight_bits");
  auto c = std::make_unique<PyWBConv>();
  c->g = wb_geometry(bits, in_channels, stride, padding);
  c->layer = std::make_unique<hbn::WBConv2d>(c->g, bits.data());
  c->layer->set_strategy(parse_strategy(strategy));
  c->layer->set_algo(parse_algo(algo));
  return c;
}

// Reference: the double-accumulation conv, then the scalar transform.
template <typename RefFn>
py::array_t<float> reference_conv(const hbn::ConvGeometry& g, const FloatArray& x,
                                  const std::optional<py::array>& scale, const std::optional<py::array>& bias,
                                  const std::optional<py::array>& pixel_scale, bool relu, RefFn ref) {
  const InputShape s = check_input(x, g);
  const int64_t M = static_cast<int64_t>(s.n) * s.oh * s.ow;
  Transform tr(scale, bias, pixel_scale, relu, g.out_channels, M);
  py::array_t<float> out({static_cast<py::ssize_t>(s.n), static_cast<py::ssize_t>(s.oh),
                          static_cast<py::ssize_t>(s.ow), static_cast<py::ssize_t>(g.out_channels)});
  float* o = out.mutable_data();
  {
    py::gil_scoped_release release;
    ref(x.data(), s.n, s.h, s.w, o);
    for (int64_t m = 0; m < M; ++m)
      for (int oc = 0; oc < g.out_channels; ++oc)
        o[m * g.out_channels + oc] = hbn::apply_transform(tr.t, o[m * g.out_channels + oc], m, oc);
  }
  return out;
}

struct PySgemm {
  std::unique_ptr<hbn::Sgemm> gemm;
  std::unique_ptr<AlignedWorkspace> ws;

  explicit PySgemm(const py::array& b_in) {
    const FloatArray b = as_f32(b_in, "b", 2);
    gemm = std::make_unique<hbn::Sgemm>(b.shape(0), b.shape(1), b.data(), b.shape(1));
    ws = std::make_unique<AlignedWorkspace>(hbn::Sgemm::workspace_bytes());
  }
  py::array_t<float> run(const py::array& a_in, const std::optional<py::array>& scale,
                         const std::optional<py::array>& bias, bool relu) const {
    const FloatArray a = as_f32(a_in, "a", 2);
    if (a.shape(1) != gemm->K())
      throw py::value_error("a has " + std::to_string(a.shape(1)) + " columns, b has " +
                            std::to_string(gemm->K()) + " rows");
    const int64_t M = a.shape(0), N = gemm->N();
    Transform tr(scale, bias, std::nullopt, relu, N, M);
    py::array_t<float> c({static_cast<py::ssize_t>(M), static_cast<py::ssize_t>(N)});
    float* cp = c.mutable_data();
    const float* ap = a.data();
    {
      py::gil_scoped_release release;
      gemm->run(M, ap, gemm->K(), tr.t, cp, N, ws->p, hbn::default_pool());
    }
    return c;
  }
};

}  // namespace

void register_float(py::module_& m) {
  using py::arg;
  const auto none = py::none();
  const Pair one{1, 1}, zero{0, 0};

  py::class_<PyConvF32>(m, "Conv2dF32",
                        "Float conv layer (weights OIHW float32, repacked once); run(x NHWC) -> NHWC. "
                        "algo: 'auto' | 'im2col' | 'direct' (input read in place).")
      .def(py::init(&make_conv_f32), arg("w"), arg("stride") = one, arg("padding") = zero,
           arg("algo") = "auto")
      .def("run", &PyConvF32::run, arg("x"), arg("scale") = none, arg("bias") = none,
           arg("relu") = false, arg("pixel_scale") = none);

  py::class_<PyWBConv>(m, "WBConv2d",
                       "Binary-weight float conv layer (weight_bits uint64 [OC,KH,KW,words]); "
                       "run(x NHWC float32) -> NHWC. strategy (sign decoding): 'auto' | 'unpack' | "
                       "'direct' | 'lut' (AVX-512 table lookups; elsewhere as 'auto'); algo (input feeding): 'auto' | 'im2col' | 'direct'.")
      .def(py::init(&make_wbconv), arg("weight_bits"), arg("in_channels"), arg("stride") = one,
           arg("padding") = zero, arg("strategy") = "auto", arg("algo") = "auto")
      .def("run", &PyWBConv::run, arg("x"), arg("scale") = none, arg("bias") = none,
           arg("relu") = false, arg("pixel_scale") = none);

  py::class_<PySgemm>(m, "Sgemm", "C = A @ B with B [K, N] float32 packed once; run(a [M, K]).")
      .def(py::init<const py::array&>(), arg("b"))
      .def("run", &PySgemm::run, arg("a"), arg("scale") = none, arg("bias") = none, arg("relu") = false);

  m.def(
      "conv2d_f32",
      [](const py::array& x, const py::array& w, Pair stride, Pair padding, const std::optional<py::array>& scale,
         const std::optional<py::array>& bias, bool relu, const std::optional<py::array>& pixel_scale,
         const std::string& algo) {
        return make_conv_f32(w, stride, padding, algo)->run(x, scale, bias, relu, pixel_scale);
      },
      "NHWC float32 conv with OIHW float32 weights, zero padding, fused scale/bias/ReLU.", arg("x"), arg("w"),
      arg("stride") = one, arg("padding") = zero, arg("scale") = none, arg("bias") = none,
      arg("relu") = false, arg("pixel_scale") = none, arg("algo") = "auto");

  m.def(
      "conv2d_f32_reference",
      [](const py::array& x_in, const py::array& w_in, Pair stride, Pair padding,
         const std::optional<py::array>& scale, const std::optional<py::array>& bias,
         bool relu, const std::optional<py::array>& pixel_scale) {
        const FloatArray x = as_f32(x_in, "x", 4), w = as_f32(w_in, "w", 4);
        const hbn::ConvGeometry g = geometry(static_cast<int>(w.shape(1)), static_cast<int>(w.shape(0)),
                                             static_cast<int>(w.shape(2)), static_cast<int>(w.shape(3)), stride, padding);
        return reference_conv(g, x, scale, bias, pixel_scale, relu, [&](const float* xi, int n, int h, int wd, float* o) {
          hbn::conv2d_f32_reference(g, xi, n, h, wd, w.data(), o);
        });
      },
      "Scalar reference of conv2d_f32 (double accumulation).", arg("x"), arg("w"), arg("stride") = one,
      arg("padding") = zero, arg("scale") = none, arg("bias") = none, arg("relu") = false,
      arg("pixel_scale") = none);

  m.def(
      "wbconv2d",
      [](const py::array& x, const py::array& bits, Pair stride, Pair padding, const std::optional<py::array>& scale,
         const std::optional<py::array>& bias, bool relu, const std::optional<py::array>& pixel_scale,
         const std::string& strategy, const std::string& algo) {
        const FloatArray xf = as_f32(x, "x", 4);
        return make_wbconv(bits, static_cast<int>(xf.shape(3)), stride, padding, strategy, algo)
            ->run(xf, scale, bias, relu, pixel_scale);
      },
      "NHWC float32 conv with +-1 weights bit-packed as uint64 [OC,KH,KW,words_for(IC)] "
      "(bit 1 = -1, channels LSB first); alpha goes in scale.",
      arg("x"), arg("weight_bits"), arg("stride") = one, arg("padding") = zero, arg("scale") = none,
      arg("bias") = none, arg("relu") = false, arg("pixel_scale") = none, arg("strategy") = "auto",
      arg("algo") = "auto");

  m.def(
      "wbconv2d_reference",
      [](const py::array& x_in, const py::array& bits_in, Pair stride, Pair padding,
         const std::optional<py::array>& scale, const std::optional<py::array>& bias,
         bool relu, const std::optional<py::array>& pixel_scale) {
        const FloatArray x = as_f32(x_in, "x", 4);
        const WordArray bits = as_words(bits_in, "weight_bits");
        const hbn::ConvGeometry g = wb_geometry(bits, static_cast<int>(x.shape(3)), stride, padding);
        return reference_conv(g, x, scale, bias, pixel_scale, relu, [&](const float* xi, int n, int h, int wd, float* o) {
          hbn::wbconv2d_reference(g, xi, n, h, wd, bits.data(), o);
        });
      },
      "Scalar reference of wbconv2d (double accumulation).", arg("x"), arg("weight_bits"), arg("stride") = one,
      arg("padding") = zero, arg("scale") = none, arg("bias") = none, arg("relu") = false,
      arg("pixel_scale") = none);

  m.def(
      "sgemm",
      [](const py::array& a, const py::array& b, const std::optional<py::array>& scale,
         const std::optional<py::array>& bias, bool relu) { return PySgemm(b).run(a, scale, bias, relu); },
      "C[M,N] = A[M,K] @ B[K,N] (float32), fused scale/bias/ReLU per column.", arg("a"), arg("b"),
      arg("scale") = none, arg("bias") = none, arg("relu") = false);
}

}  // namespace hbn_py

// Bindings for the binary kernels: bit-packing, the weight binarizer, FullBinConv (BConv2d)
// and the peak loops. Conversions only (python/arrays.h, python/conv_binding.h); kernels run
// with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "bconv/bconv.h"
#include "bitpack/binarize.h"
#include "bitpack/bitpack.h"
#include "peak/peak.h"
#include "python/arrays.h"
#include "python/bindings.h"
#include "python/conv_binding.h"

namespace hbn_py {
namespace {

using hbn::word_t;
using PyBConv2d = PyConv<hbn::BConv2d, true>;

py::array_t<uint64_t> pack_impl(const py::object& xo, const py::object& thr_o, const py::object& flip_o,
                                bool reference, const py::object& threads = py::none()) {
  F32 x = expect<float>(xo, "x");
  if (x.ndim() < 1 || x.shape(x.ndim() - 1) < 1) throw py::value_error("x must have a non-empty last (channel) axis");
  const int64_t C = x.shape(x.ndim() - 1);
  if (C > (1 << 30)) throw py::value_error("too many channels");
  const int64_t rows = x.size() / C;
  auto thr = opt_vec(thr_o, "thresholds", C, "channel");
  auto flip = opt_flip(flip_o, "flip", C);
  if (flip && !thr) throw py::value_error("flip needs thresholds");
  std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
  shape.back() = hbn::words_for(C);
  py::array_t<uint64_t> out(shape);
  const float* tp = thr ? thr->data() : nullptr;
  const uint8_t* fp = flip ? flip->data() : nullptr;
  word_t* op = reinterpret_cast<word_t*>(out.mutable_data());
  const float* xp = x.data();
  std::unique_ptr<hbn::ThreadPool> own;
  hbn::ThreadPool& pool = pool_for(threads, own);
  {
    py::gil_scoped_release release;
    if (reference)
      hbn::pack_rows_reference(xp, rows, static_cast<int>(C), C, op, tp, fp);
    else
      hbn::pack_rows(xp, rows, static_cast<int>(C), C, op, tp, fp, &pool);
  }
  return out;
}

hbn::InputDomain input_domain(const std::string& d) {
  if (d == "pm1") return hbn::InputDomain::pm1;
  if (d == "zero_one") return hbn::InputDomain::zero_one;
  throw py::value_error("input_domain must be 'pm1' (bit 1 = -1) or 'zero_one' (bit 1 = 0), got '" + d + "'");
}

std::unique_ptr<PyBConv2d> make_bconv(const py::object& wo, const py::object& in_channels, const py::object& stride,
                                      const py::object& padding, const std::string& domain = "pm1") {
  const U64 w = expect<uint64_t>(wo, "weight_bits");
  const hbn::ConvGeometry g = bits_geometry(w, in_channels, stride, padding);
  auto layer = std::make_unique<hbn::BConv2d>(g, reinterpret_cast<const word_t*>(w.data()));
  layer->set_input_domain(input_domain(domain));
  return std::make_unique<PyBConv2d>(g, std::move(layer));
}

}  // namespace

void register_binary(py::module_& m) {
  using py::arg;
  const auto none = py::none();
  const auto one = py::make_tuple(1, 1), zero = py::make_tuple(0, 0);

  m.def(
      "pack_rows",
      [](const py::object& x, const py::object& thresholds, const py::object& flip, const py::object& threads) {
        return pack_impl(x, thresholds, flip, false, threads);
      },
      arg("x"), arg("thresholds") = none, arg("flip") = none, arg("threads") = none,
      "Sign bits of float32 [..., C] packed along the last axis -> uint64 [..., words]. "
      "bit 1 = -1; bit = x < 0, or flip ? x > thr : x < thr with thresholds.");
  m.def(
      "pack_rows_reference",
      [](const py::object& x, const py::object& thresholds, const py::object& flip) {
        return pack_impl(x, thresholds, flip, true);
      },
      arg("x"), arg("thresholds") = none, arg("flip") = none, "Scalar reference of pack_rows.");
  m.def(
      "pack_weights_oihw",
      [](const py::object& wo) {
        const F32 w = expect<float>(wo, "w");
        if (w.ndim() != 4) throw py::value_error("w must be float32 [OC, IC, KH, KW]");
        const int64_t OC = w.shape(0), IC = w.shape(1), KH = w.shape(2), KW = w.shape(3);
        py::array_t<uint64_t> out({OC, KH, KW, hbn::words_for(IC)});
        word_t* o = reinterpret_cast<word_t*>(out.mutable_data());
        const float* p = w.data();
        py::gil_scoped_release release;
        hbn::binarize_oihw(OC, IC, KH, KW, p, o);
        return out;
      },
      arg("w"),
      "Binarize float32 OIHW weights (sign(0) = sign(-0) = +1) into the canonical uint64 "
      "[OC, KH, KW, words] layout: the C++ core's one binarizer (bitpack/binarize.h).");

  py::class_<PyBConv2d> cls(m, "BConv2d",
                            "FullBinConv layer: packed NHWC input x packed weights (uint64 [OC, KH, KW, words]), "
                            "weights repacked once. in_channels = real input channels (default 64 * words).");
  cls.def(py::init(&make_bconv), arg("weight_bits"), arg("in_channels") = none, arg("stride") = one,
          arg("padding") = zero, arg("input_domain") = "pm1");
  cls.def_property_readonly("input_domain", [](PyBConv2d& c) {
    return c.layer().input_domain() == hbn::InputDomain::zero_one ? "zero_one" : "pm1";
  });
  def_conv_surface(cls);

  m.def(
      "bconv2d",
      [](const py::object& x, const py::object& wb, const py::object& stride, const py::object& padding,
         const py::object& scale, const py::object& bias, const py::object& ps, bool relu, const py::object& thr,
         const py::object& flip, const py::object& in_channels, const py::object& threads,
         const std::string& domain) {
        return make_bconv(wb, in_channels, stride, padding, domain)->run(x, scale, bias, ps, relu, thr, flip, threads);
      },
      arg("x_packed"), arg("weight_bits"), arg("stride") = one, arg("padding") = zero, arg("scale") = none,
      arg("bias") = none, arg("pixel_scale") = none, arg("relu") = false, arg("out_threshold") = none,
      arg("out_flip") = none, arg("in_channels") = none, arg("threads") = none, arg("input_domain") = "pm1",
      "BConv2d(weight_bits, in_channels, stride, padding).run(x_packed, ...) in one call (PyTorch zero padding).");
  m.def(
      "bconv2d_reference",
      [](const py::object& xo, const py::object& wo, const py::object& stride, const py::object& padding,
         const py::object& in_channels, const std::string& domain) {
        const hbn::InputDomain dom = input_domain(domain);
        const U64 w = expect<uint64_t>(wo, "weight_bits");
        const hbn::ConvGeometry g = bits_geometry(w, in_channels, stride, padding);
        const U64 x = expect<uint64_t>(xo, "x_packed", 4);
        const InputShape s = check_conv_input(x, g, true);
        check_tails(x, g.in_channels, "x_packed");
        py::array_t<int32_t> out({s.n, s.oh, s.ow, g.out_channels});
        int32_t* op = out.mutable_data();
        const word_t* xp = reinterpret_cast<const word_t*>(x.data());
        const word_t* wp = reinterpret_cast<const word_t*>(w.data());
        py::gil_scoped_release release;
        hbn::bconv2d_reference(g, xp, s.n, s.h, s.w, wp, op, dom);
        return out;
      },
      arg("x_packed"), arg("weight_bits"), arg("stride") = one, arg("padding") = zero, arg("in_channels") = none,
      arg("input_domain") = "pm1",
      "Scalar reference: int32 [N, OH, OW, OC] dot products with +-1 weights, PyTorch zero padding; inputs "
      "+-1 (input_domain='pm1', bit 1 = -1) or {0, 1} ('zero_one', bit 1 = 0).");

  m.def(
      "peak_binary_macs",
      [](const std::string& isa, double seconds) {
        py::gil_scoped_release release;
        return hbn::peak_binary_macs(isa, seconds);
      },
      arg("isa"), arg("seconds") = 0.2, "Register-resident xor+popcount+add peak of an ISA path, binary MACs/s on one thread.");
  m.def(
      "peak_binary_variant",
      [](const std::string& name, double seconds) {
        py::gil_scoped_release release;
        return hbn::peak_binary_variant(name.c_str(), seconds);
      },
      arg("name"), arg("seconds") = 0.2, "One row of the peak_binary table by name (kernel_tables()['peak_binary']).");
  m.def(
      "peak_fma_macs",
      [](const std::string& isa, double seconds) {
        py::gil_scoped_release release;
        return hbn::peak_fma_macs(isa, seconds);
      },
      arg("isa"), arg("seconds") = 0.2, "Register-resident fp32 FMA peak of an ISA path, MACs/s on one thread.");
}

}  // namespace hbn_py

// Bindings for the binary kernels: bit-packing, FullBinConv (BConv2d) and the peak loops.
// Type conversion and validation only; kernels run with the GIL released.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bconv/bconv.h"
#include "bconv/bconv_kernels.h"
#include "bitpack/bitpack.h"
#include "hbn/isa.h"
#include "hbn/threadpool.h"
#include "peak/peak.h"
#include "python/bindings.h"

namespace py = pybind11;

namespace hbn_py {
namespace {

using hbn::word_t;
using F32 = py::array_t<float, py::array::c_style>;
using U64 = py::array_t<uint64_t, py::array::c_style>;
using U8 = py::array_t<uint8_t, py::array::c_style>;

// Accepts exactly `dtype` (no silent float64 -> float32 casts); returns a C-contiguous view
// (a copy only when the input is not contiguous).
template <class T>
py::array_t<T, py::array::c_style> expect(const py::handle& obj, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw py::value_error(std::string(name) + " must be a numpy array");
  auto arr = py::reinterpret_borrow<py::array>(obj);
  if (!arr.dtype().is(py::dtype::of<T>()))
    throw py::value_error(std::string(name) + " must have dtype " +
                          std::string(py::str(py::dtype::of<T>())) + ", got " +
                          std::string(py::str(arr.dtype())));
  return py::array_t<T, py::array::c_style>::ensure(arr);
}

// Per-channel float vector of length n, or empty when obj is None.
std::optional<F32> opt_vec(const py::object& obj, const char* name, int64_t n) {
  if (obj.is_none()) return std::nullopt;
  F32 a = expect<float>(obj, name);
  if (a.size() != n)
    throw py::value_error(std::string(name) + " must have " + std::to_string(n) + " elements, got " +
                          std::to_string(a.size()));
  return a;
}

// Flip flags: uint8 or bool, n elements.
std::optional<U8> opt_flip(const py::object& obj, int64_t n) {
  if (obj.is_none()) return std::nullopt;
  if (!py::isinstance<py::array>(obj)) throw py::value_error("flip must be a numpy array");
  auto arr = py::reinterpret_borrow<py::array>(obj);
  if (!arr.dtype().is(py::dtype::of<uint8_t>()) && !arr.dtype().is(py::dtype::of<bool>()))
    throw py::value_error("flip must have dtype uint8 or bool, got " + std::string(py::str(arr.dtype())));
  U8 a = U8::ensure(arr.attr("view")(py::dtype::of<uint8_t>()));
  if (a.size() != n)
    throw py::value_error("flip must have " + std::to_string(n) + " elements, got " + std::to_string(a.size()));
  return a;
}

std::pair<int, int> pair_arg(const py::object& obj, const char* name, int min_value) {
  int a, b;
  if (py::isinstance<py::int_>(obj)) {
    a = b = obj.cast<int>();
  } else {
    auto t = obj.cast<std::vector<int>>();
    if (t.size() != 2) throw py::value_error(std::string(name) + " must be an int or a pair of ints");
    a = t[0];
    b = t[1];
  }
  if (a < min_value || b < min_value)
    throw py::value_error(std::string(name) + " must be >= " + std::to_string(min_value));
  return {a, b};
}

hbn::Isa isa_arg(const std::string& name) {
  hbn::Isa isa;
  if (!hbn::parse_isa(name, &isa)) throw py::value_error("unknown ISA name: " + name);
  if (!hbn::isa_supported(isa)) throw py::value_error("ISA " + name + " is not supported on this CPU/build");
  return isa;
}

// Rejects packed data whose tail bits (past `channels` in the last word of each group) are set:
// K - 2*popcount counts them otherwise.
void check_tails(const U64& a, int channels, const char* name) {
  const int64_t words = hbn::words_for(channels);
  if (channels % 64 == 0) return;
  const word_t mask = ~((word_t{1} << (channels % 64)) - 1);
  const uint64_t* p = a.data();
  for (int64_t g = 0, n = a.size() / words; g < n; ++g)
    if (p[g * words + words - 1] & mask)
      throw py::value_error(std::string(name) + " has bits set past channel " + std::to_string(channels) +
                            " (tail bits must be 0)");
}

// threads: None = the default pool (hbn_engine.set_num_threads); k = a pool of k threads
// made for this call.
std::unique_ptr<hbn::ThreadPool> local_pool(const py::object& threads) {
  if (threads.is_none()) return nullptr;
  const int k = threads.cast<int>();
  if (k < 1) throw py::value_error("threads must be >= 1");
  return std::make_unique<hbn::ThreadPool>(k);
}

py::array_t<uint64_t> pack_impl(const py::object& xo, const py::object& thr_o, const py::object& flip_o,
                                bool reference, const py::object& threads = py::none()) {
  F32 x = expect<float>(xo, "x");
  if (x.ndim() < 1 || x.shape(x.ndim() - 1) < 1)
    throw py::value_error("x must have a non-empty last (channel) axis");
  const int64_t C = x.shape(x.ndim() - 1);
  if (C > (1 << 30)) throw py::value_error("too many channels");
  const int64_t rows = C ? x.size() / C : 0;
  auto thr = opt_vec(thr_o, "thresholds", C);
  auto flip = opt_flip(flip_o, C);
  if (flip && !thr) throw py::value_error("flip needs thresholds");
  std::vector<py::ssize_t> shape(x.shape(), x.shape() + x.ndim());
  shape.back() = hbn::words_for(C);
  py::array_t<uint64_t> out(shape);
  const float* tp = thr ? thr->data() : nullptr;
  const uint8_t* fp = flip ? flip->data() : nullptr;
  word_t* op = reinterpret_cast<word_t*>(out.mutable_data());
  const float* xp = x.data();
  auto pool = local_pool(threads);
  hbn::ThreadPool* pp = pool ? pool.get() : &hbn::default_pool();
  {
    py::gil_scoped_release release;
    if (reference)
      hbn::pack_rows_reference(xp, rows, static_cast<int>(C), C, op, tp, fp);
    else
      hbn::pack_rows(xp, rows, static_cast<int>(C), C, op, tp, fp, pp);
  }
  return out;
}

hbn::ConvGeometry geometry(const U64& w, int channels, std::pair<int, int> stride, std::pair<int, int> pad) {
  if (w.ndim() != 4) throw py::value_error("weight_bits must be uint64 [OC, KH, KW, words]");
  if (channels < 1) throw py::value_error("channels must be >= 1");
  if (w.shape(3) != hbn::words_for(channels))
    throw py::value_error("weight_bits has " + std::to_string(w.shape(3)) + " words per tap, " +
                          std::to_string(channels) + " channels need " + std::to_string(hbn::words_for(channels)));
  if (w.shape(0) < 1 || w.shape(1) < 1 || w.shape(2) < 1) throw py::value_error("weight_bits has an empty axis");
  hbn::ConvGeometry g;
  g.in_channels = channels;
  g.out_channels = static_cast<int>(w.shape(0));
  g.kernel_h = static_cast<int>(w.shape(1));
  g.kernel_w = static_cast<int>(w.shape(2));
  g.stride_h = stride.first;
  g.stride_w = stride.second;
  g.pad_h = pad.first;
  g.pad_w = pad.second;
  return g;
}

int channels_arg(const py::object& ch, const U64& w) {
  if (ch.is_none()) return static_cast<int>(w.ndim() == 4 ? w.shape(3) * 64 : 0);
  return ch.cast<int>();
}

U64 check_input(const py::object& xo, const hbn::ConvGeometry& g) {
  U64 x = expect<uint64_t>(xo, "x_packed");
  if (x.ndim() != 4) throw py::value_error("x_packed must be uint64 [N, H, W, words]");
  if (x.shape(3) != hbn::words_for(g.in_channels))
    throw py::value_error("x_packed has " + std::to_string(x.shape(3)) + " words per pixel, weights have " +
                          std::to_string(hbn::words_for(g.in_channels)));
  if (g.out_h(static_cast<int>(x.shape(1))) < 1 || g.out_w(static_cast<int>(x.shape(2))) < 1)
    throw py::value_error("input is smaller than the kernel (after padding)");
  check_tails(x, g.in_channels, "x_packed");
  return x;
}

// A BConv2d built once (weights packed once) and run many times, for benchmarks and the runtime.
class PyBConv2d {
 public:
  PyBConv2d(const py::object& wo, const py::object& ch, const py::object& stride, const py::object& padding)
      : w_(expect<uint64_t>(wo, "weight_bits")),
        g_(geometry(w_, channels_arg(ch, w_), pair_arg(stride, "stride", 1), pair_arg(padding, "padding", 0))) {
    check_tails(w_, g_.in_channels, "weight_bits");
    conv_.emplace(g_, reinterpret_cast<const word_t*>(w_.data()));
  }

  py::array run(const py::object& xo, const py::object& scale_o, const py::object& bias_o,
                const py::object& ps_o, bool relu, const py::object& thr_o, const py::object& flip_o,
                const py::object& threads) {
    hbn::ThreadPool& pool = pool_for(threads);
    U64 x = check_input(xo, g_);
    const int n = static_cast<int>(x.shape(0)), h = static_cast<int>(x.shape(1)), w = static_cast<int>(x.shape(2));
    const int OH = g_.out_h(h), OW = g_.out_w(w), OC = g_.out_channels;
    const int64_t M = static_cast<int64_t>(n) * OH * OW;
    auto scale = opt_vec(scale_o, "scale", OC);
    auto bias = opt_vec(bias_o, "bias", OC);
    auto ps = opt_vec(ps_o, "pixel_scale", M);
    auto thr = opt_vec(thr_o, "out_threshold", OC);
    auto flip = opt_flip(flip_o, OC);
    if (flip && !thr) throw py::value_error("out_flip needs out_threshold");
    hbn::OutputTransform t;
    t.scale = scale ? scale->data() : nullptr;
    t.bias = bias ? bias->data() : nullptr;
    t.pixel_scale = ps ? ps->data() : nullptr;
    t.act = relu ? hbn::Activation::relu : hbn::Activation::none;
    t.out_threshold = thr ? thr->data() : nullptr;
    t.out_flip = flip ? flip->data() : nullptr;
    const size_t need = conv_->workspace_bytes(n, h, w);
    if (workspace_.size() < need) workspace_.resize(need);
    const word_t* xp = reinterpret_cast<const word_t*>(x.data());
    if (thr) {
      py::array_t<uint64_t> out({n, OH, OW, static_cast<int>(hbn::words_for(OC))});
      word_t* op = reinterpret_cast<word_t*>(out.mutable_data());
      py::gil_scoped_release release;
      conv_->run_bits(xp, n, h, w, t, op, workspace_.data(), pool);
      return std::move(out);
    }
    py::array_t<float> out({n, OH, OW, OC});
    float* op = out.mutable_data();
    py::gil_scoped_release release;
    conv_->run(xp, n, h, w, t, op, workspace_.data(), pool);
    return std::move(out);
  }

  // Runs the float path `iters` times on one input entirely in C++ (no per-call Python or
  // allocation overhead) and returns the best single-run time in seconds.
  double time_run(const py::object& xo, int iters, bool with_transform, const py::object& threads) {
    hbn::ThreadPool& pool = pool_for(threads);
    U64 x = check_input(xo, g_);
    if (iters < 1) throw py::value_error("iters must be >= 1");
    const int n = static_cast<int>(x.shape(0)), h = static_cast<int>(x.shape(1)), w = static_cast<int>(x.shape(2));
    const int OC = g_.out_channels;
    const int64_t M = static_cast<int64_t>(n) * g_.out_h(h) * g_.out_w(w);
    std::vector<float> out(static_cast<size_t>(M * OC)), scale(OC, 0.01f), bias(OC, 0.5f);
    hbn::OutputTransform t;
    if (with_transform) {
      t.scale = scale.data();
      t.bias = bias.data();
      t.act = hbn::Activation::relu;
    }
    const size_t need = conv_->workspace_bytes(n, h, w);
    if (workspace_.size() < need) workspace_.resize(need);
    const word_t* xp = reinterpret_cast<const word_t*>(x.data());
    py::gil_scoped_release release;
    double best = 1e30;
    for (int i = 0; i < iters; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      conv_->run(xp, n, h, w, t, out.data(), workspace_.data(), pool);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  }

  const hbn::ConvGeometry& geometry_() const { return g_; }
  size_t workspace_bytes(int n, int h, int w) const { return conv_->workspace_bytes(n, h, w); }

 private:
  // threads: None = the default pool; k = this object's own pool of k threads.
  hbn::ThreadPool& pool_for(const py::object& threads) {
    if (threads.is_none()) return hbn::default_pool();
    const int k = threads.cast<int>();
    if (k < 1) throw py::value_error("threads must be >= 1");
    if (!own_pool_ || own_pool_->num_threads() != k) own_pool_ = std::make_unique<hbn::ThreadPool>(k);
    return *own_pool_;
  }

  std::unique_ptr<hbn::ThreadPool> own_pool_;
  U64 w_;
  hbn::ConvGeometry g_;
  std::optional<hbn::BConv2d> conv_;
  std::vector<unsigned char> workspace_;
};

}  // namespace

void register_binary(py::module_& m) {
  m.def(
      "pack_rows",
      [](const py::object& x, const py::object& thresholds, const py::object& flip, const py::object& threads) {
        return pack_impl(x, thresholds, flip, false, threads);
      },
      py::arg("x"), py::arg("thresholds") = py::none(), py::arg("flip") = py::none(),
      py::arg("threads") = py::none(),
      "Sign bits of float32 [..., C] packed along the last axis -> uint64 [..., words]. "
      "bit 1 = -1; bit = x < 0, or flip ? x > thr : x < thr with thresholds.");
  m.def(
      "pack_rows_reference",
      [](const py::object& x, const py::object& thresholds, const py::object& flip) {
        return pack_impl(x, thresholds, flip, true);
      },
      py::arg("x"), py::arg("thresholds") = py::none(), py::arg("flip") = py::none(),
      "Scalar reference of pack_rows.");
  m.def(
      "pack_weights_oihw",
      [](const py::object& wo) {
        F32 w = expect<float>(wo, "w");
        if (w.ndim() != 4) throw py::value_error("w must be float32 [OC, IC, KH, KW]");
        const int64_t OC = w.shape(0), IC = w.shape(1), KH = w.shape(2), KW = w.shape(3);
        const int64_t W = hbn::words_for(IC);
        py::array_t<uint64_t> out({OC, KH, KW, W});
        uint64_t* o = out.mutable_data();
        std::memset(o, 0, sizeof(uint64_t) * out.size());
        const float* p = w.data();
        for (int64_t oc = 0; oc < OC; ++oc)
          for (int64_t c = 0; c < IC; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kx = 0; kx < KW; ++kx)
                if (p[((oc * IC + c) * KH + kh) * KW + kx] < 0.0f)
                  o[((oc * KH + kh) * KW + kx) * W + c / 64] |= uint64_t{1} << (c % 64);
        return out;
      },
      py::arg("w"),
      "Binarize float32 OIHW weights (sign(0) = +1) into the canonical uint64 [OC, KH, KW, words] layout.");

  m.def(
      "bconv2d",
      [](const py::object& x, const py::object& wb, const py::object& stride, const py::object& padding,
         const py::object& scale, const py::object& bias, const py::object& ps, bool relu,
         const py::object& thr, const py::object& flip, const py::object& channels, const py::object& threads) {
        PyBConv2d conv(wb, channels, stride, padding);
        return conv.run(x, scale, bias, ps, relu, thr, flip, threads);
      },
      py::arg("x_packed"), py::arg("weight_bits"), py::arg("stride") = py::make_tuple(1, 1),
      py::arg("padding") = py::make_tuple(0, 0), py::arg("scale") = py::none(), py::arg("bias") = py::none(),
      py::arg("pixel_scale") = py::none(), py::arg("relu") = false, py::arg("out_threshold") = py::none(),
      py::arg("out_flip") = py::none(), py::arg("channels") = py::none(), py::arg("threads") = py::none(),
      "Binary conv of packed NHWC input and packed weights (PyTorch zero padding). Returns float32 "
      "[N, OH, OW, OC] with the output transform applied, or uint64 [N, OH, OW, words(OC)] bits when "
      "out_threshold is given. channels = real input channels (default: 64 * words).");
  m.def(
      "bconv2d_reference",
      [](const py::object& xo, const py::object& wo, const py::object& stride, const py::object& padding,
         const py::object& ch) {
        U64 w = expect<uint64_t>(wo, "weight_bits");
        const hbn::ConvGeometry g =
            geometry(w, channels_arg(ch, w), pair_arg(stride, "stride", 1), pair_arg(padding, "padding", 0));
        check_tails(w, g.in_channels, "weight_bits");
        U64 x = check_input(xo, g);
        const int n = static_cast<int>(x.shape(0)), h = static_cast<int>(x.shape(1)), wd = static_cast<int>(x.shape(2));
        py::array_t<int32_t> out({n, g.out_h(h), g.out_w(wd), g.out_channels});
        int32_t* op = out.mutable_data();
        const word_t* xp = reinterpret_cast<const word_t*>(x.data());
        const word_t* wp = reinterpret_cast<const word_t*>(w.data());
        py::gil_scoped_release release;
        hbn::bconv2d_reference(g, xp, n, h, wd, wp, op);
        return out;
      },
      py::arg("x_packed"), py::arg("weight_bits"), py::arg("stride") = py::make_tuple(1, 1),
      py::arg("padding") = py::make_tuple(0, 0), py::arg("channels") = py::none(),
      "Scalar reference: int32 [N, OH, OW, OC] +-1 dot products, PyTorch zero padding.");

  py::class_<PyBConv2d>(m, "BConv2d", "A binary conv with weights packed once, run many times.")
      .def(py::init<const py::object&, const py::object&, const py::object&, const py::object&>(),
           py::arg("weight_bits"), py::arg("channels") = py::none(), py::arg("stride") = py::make_tuple(1, 1),
           py::arg("padding") = py::make_tuple(0, 0))
      .def("run", &PyBConv2d::run, py::arg("x_packed"), py::arg("scale") = py::none(),
           py::arg("bias") = py::none(), py::arg("pixel_scale") = py::none(), py::arg("relu") = false,
           py::arg("out_threshold") = py::none(), py::arg("out_flip") = py::none(),
           py::arg("threads") = py::none())
      .def("time_run", &PyBConv2d::time_run, py::arg("x_packed"), py::arg("iters") = 10,
           py::arg("with_transform") = true, py::arg("threads") = py::none(),
           "Best wall time (s) of `iters` float-mode runs (scale, bias, ReLU when with_transform) "
           "timed inside C++.")
      .def("workspace_bytes", &PyBConv2d::workspace_bytes, py::arg("n"), py::arg("h"), py::arg("w"))
      .def_property_readonly("in_channels", [](const PyBConv2d& c) { return c.geometry_().in_channels; })
      .def_property_readonly("out_channels", [](const PyBConv2d& c) { return c.geometry_().out_channels; })
      .def_property_readonly("kernel_size", [](const PyBConv2d& c) {
        return py::make_tuple(c.geometry_().kernel_h, c.geometry_().kernel_w);
      });

  m.def(
      "peak_binary_macs",
      [](const std::string& isa, double seconds) {
        const hbn::Isa i = isa_arg(isa);
        py::gil_scoped_release release;
        return hbn::peak_binary_macs(i, seconds);
      },
      py::arg("isa"), py::arg("seconds") = 0.2,
      "Register-resident xor+popcount+add peak, binary MACs/s on one thread.");
  m.def(
      "peak_binary_variant",
      [](const std::string& name, double seconds) {
        // std::invalid_argument (unknown or unavailable loop) surfaces as ValueError.
        py::gil_scoped_release release;
        return hbn::peak_binary_variant(name.c_str(), seconds);
      },
      py::arg("name"), py::arg("seconds") = 0.2,
      "One binary peak loop by name: scalar, avx512, avx2_lut, avx2_popcnt, neon.");
  m.def(
      "peak_fma_macs",
      [](const std::string& isa, double seconds) {
        const hbn::Isa i = isa_arg(isa);
        py::gil_scoped_release release;
        return hbn::peak_fma_macs(i, seconds);
      },
      py::arg("isa"), py::arg("seconds") = 0.2, "Register-resident fp32 FMA peak, MACs/s on one thread.");
  m.def(
      "_set_bconv_avx2_variant",
      [](const std::string& name) {
        if (name != "lut" && name != "popcnt") throw py::value_error("variant must be 'lut' or 'popcnt'");
        hbn::detail::set_avx2_variant(name == "popcnt" ? 1 : 0);
      },
      py::arg("name"), "Select the AVX2 bconv formulation (testing/benchmarks).");
  m.def("_get_bconv_avx2_variant", [] { return std::string(hbn::detail::avx2_variant() ? "popcnt" : "lut"); });
}

}  // namespace hbn_py

#include "python/arrays.h"

#include <pybind11/stl.h>

#include <cstdlib>
#include <new>
#include <vector>

namespace hbn_py {

std::optional<F32> opt_vec(const py::object& obj, const char* name, int64_t n, const char* what) {
  if (obj.is_none()) return std::nullopt;
  F32 a = expect<float>(obj, name);
  if (a.size() != n)
    throw py::value_error(std::string(name) + " must have " + std::to_string(n) + " elements (one per " + what +
                          "), got " + std::to_string(a.size()));
  return a;
}

std::optional<U8> opt_flip(const py::object& obj, const char* name, int64_t n) {
  if (obj.is_none()) return std::nullopt;
  if (!py::isinstance<py::array>(obj)) throw py::value_error(std::string(name) + " must be a numpy array");
  auto arr = py::reinterpret_borrow<py::array>(obj);
  if (!arr.dtype().is(py::dtype::of<uint8_t>()) && !arr.dtype().is(py::dtype::of<bool>()))
    throw py::value_error(std::string(name) + " must have dtype uint8 or bool, got " + std::string(py::str(arr.dtype())));
  U8 a = U8::ensure(arr.attr("view")(py::dtype::of<uint8_t>()));
  if (a.size() != n)
    throw py::value_error(std::string(name) + " must have " + std::to_string(n) + " elements, got " +
                          std::to_string(a.size()));
  return a;
}

std::pair<int, int> pair_arg(const py::object& obj, const char* name, int min_value) {
  int a, b;
  if (py::isinstance<py::int_>(obj)) {
    a = b = obj.cast<int>();
  } else {
    std::vector<int> t;
    try {
      t = obj.cast<std::vector<int>>();
    } catch (const py::cast_error&) {
      throw py::value_error(std::string(name) + " must be an int or a pair of ints");
    }
    if (t.size() != 2) throw py::value_error(std::string(name) + " must be an int or a pair of ints");
    a = t[0];
    b = t[1];
  }
  if (a < min_value || b < min_value) throw py::value_error(std::string(name) + " must be >= " + std::to_string(min_value));
  return {a, b};
}

void check_tails(const U64& a, int channels, const char* name) {
  const int64_t words = hbn::words_for(channels);
  if (channels % 64 == 0) return;
  const hbn::word_t mask = ~((hbn::word_t{1} << (channels % 64)) - 1);
  const uint64_t* p = a.data();
  for (int64_t g = 0, n = a.size() / words; g < n; ++g)
    if (p[g * words + words - 1] & mask)
      throw py::value_error(std::string(name) + " has bits set past channel " + std::to_string(channels) +
                            " (tail bits must be 0)");
}

hbn::ConvGeometry conv_geometry(int in_channels, int out_channels, int kh, int kw, const py::object& stride,
                                const py::object& padding) {
  const auto s = pair_arg(stride, "stride", 1);
  const auto p = pair_arg(padding, "padding", 0);
  if (in_channels < 1 || out_channels < 1 || kh < 1 || kw < 1) throw py::value_error("the weights have an empty axis");
  hbn::ConvGeometry g;
  g.in_channels = in_channels;
  g.out_channels = out_channels;
  g.kernel_h = kh;
  g.kernel_w = kw;
  g.stride_h = s.first;
  g.stride_w = s.second;
  g.pad_h = p.first;
  g.pad_w = p.second;
  return g;
}

hbn::ConvGeometry bits_geometry(const U64& w, const py::object& in_channels, const py::object& stride,
                                const py::object& padding) {
  if (w.ndim() != 4) throw py::value_error("weight_bits must be uint64 [OC, KH, KW, words]");
  const int64_t words = w.shape(3);
  const int ic = in_channels.is_none() ? static_cast<int>(words * 64) : in_channels.cast<int>();
  if (ic < 1) throw py::value_error("in_channels must be >= 1");
  if (words != hbn::words_for(ic))
    throw py::value_error("weight_bits has " + std::to_string(words) + " words per tap, " + std::to_string(ic) +
                          " channels need " + std::to_string(hbn::words_for(ic)));
  const hbn::ConvGeometry g = conv_geometry(ic, static_cast<int>(w.shape(0)), static_cast<int>(w.shape(1)),
                                            static_cast<int>(w.shape(2)), stride, padding);
  check_tails(w, ic, "weight_bits");
  return g;
}

InputShape check_conv_input(const py::array& x, const hbn::ConvGeometry& g, bool packed) {
  const char* name = packed ? "x_packed" : "x";
  const int64_t last = packed ? hbn::words_for(g.in_channels) : g.in_channels;
  if (x.shape(3) != last) {
    if (packed)
      throw py::value_error("x_packed has " + std::to_string(x.shape(3)) + " words per pixel, weights have " +
                            std::to_string(last));
    throw py::value_error("x has " + std::to_string(x.shape(3)) + " channels (NHWC), weights expect " +
                          std::to_string(last));
  }
  InputShape s{static_cast<int>(x.shape(0)), static_cast<int>(x.shape(1)), static_cast<int>(x.shape(2)), 0, 0};
  if (s.h < 1 || s.w < 1) throw py::value_error(std::string(name) + " must have a non-empty spatial size");
  if (s.h + 2 * g.pad_h < g.kernel_h || s.w + 2 * g.pad_w < g.kernel_w)
    throw py::value_error("input (with padding) is smaller than the kernel");
  s.oh = g.out_h(s.h);
  s.ow = g.out_w(s.w);
  return s;
}

Transform::Transform(const py::object& scale_o, const py::object& bias_o, const py::object& ps_o, bool relu,
                     const py::object& thr_o, const py::object& flip_o, int64_t n_out, int64_t m_rows) {
  scale = opt_vec(scale_o, "scale", n_out, "output channel");
  bias = opt_vec(bias_o, "bias", n_out, "output channel");
  pixel_scale = opt_vec(ps_o, "pixel_scale", m_rows, "output pixel, N*OH*OW");
  threshold = opt_vec(thr_o, "out_threshold", n_out, "output channel");
  flip = opt_flip(flip_o, "out_flip", n_out);
  if (flip && !threshold) throw py::value_error("out_flip needs out_threshold");
  t.scale = scale ? scale->data() : nullptr;
  t.bias = bias ? bias->data() : nullptr;
  t.pixel_scale = pixel_scale ? pixel_scale->data() : nullptr;
  t.act = relu ? hbn::Activation::relu : hbn::Activation::none;
  t.out_threshold = threshold ? threshold->data() : nullptr;
  t.out_flip = flip ? flip->data() : nullptr;
}

void Workspace::Free::operator()(void* p) const { std::free(p); }

void* Workspace::get(size_t bytes) {
  if (!p_ || bytes > bytes_) {
    const size_t rounded = (bytes + hbn::kAlignment) / hbn::kAlignment * hbn::kAlignment;
    void* p = std::aligned_alloc(hbn::kAlignment, rounded);
    if (!p) throw std::bad_alloc();
    p_.reset(p);
    bytes_ = bytes;
  }
  return p_.get();
}

hbn::ThreadPool& pool_for(const py::object& threads, std::unique_ptr<hbn::ThreadPool>& own) {
  if (threads.is_none()) return hbn::default_pool();
  const int k = threads.cast<int>();
  if (k < 1) throw py::value_error("threads must be >= 1");
  if (!own || own->num_threads() != k) own = std::make_unique<hbn::ThreadPool>(k);
  return *own;
}

}  // namespace hbn_py

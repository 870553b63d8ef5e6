// The conversions every kernel binding shares: numpy arrays checked (exact dtype, shape) and
// viewed C-contiguous, the conv geometry and input checks, the output transform, workspaces and
// thread pools. Each failure is a ValueError naming the argument.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "hbn/conv_geometry.h"
#include "hbn/threadpool.h"
#include "hbn/types.h"
#include "transform/output_transform.h"

namespace hbn_py {

namespace py = pybind11;

using F32 = py::array_t<float, py::array::c_style>;
using U64 = py::array_t<uint64_t, py::array::c_style>;
using U8 = py::array_t<uint8_t, py::array::c_style>;

// Exactly dtype T (no silent float64 -> float32 casts) and, when ndim >= 0, that many
// dimensions; a C-contiguous view (a copy only when the input is not contiguous).
template <class T>
py::array_t<T, py::array::c_style> expect(const py::handle& obj, const char* name, int ndim = -1) {
  if (!py::isinstance<py::array>(obj)) throw py::value_error(std::string(name) + " must be a numpy array");
  auto arr = py::reinterpret_borrow<py::array>(obj);
  if (!arr.dtype().is(py::dtype::of<T>()))
    throw py::value_error(std::string(name) + " must have dtype " + std::string(py::str(py::dtype::of<T>())) +
                          ", got " + std::string(py::str(arr.dtype())));
  if (ndim >= 0 && arr.ndim() != ndim)
    throw py::value_error(std::string(name) + " must have " + std::to_string(ndim) + " dimensions, got " +
                          std::to_string(arr.ndim()));
  return py::array_t<T, py::array::c_style>::ensure(arr);
}

// A float32 vector of n elements (`what` says what they index), or nothing for None.
std::optional<F32> opt_vec(const py::object& obj, const char* name, int64_t n, const char* what);
// Flip flags: uint8 or bool, n elements, or nothing for None.
std::optional<U8> opt_flip(const py::object& obj, const char* name, int64_t n);
// An int or a pair of ints, each >= min_value.
std::pair<int, int> pair_arg(const py::object& obj, const char* name, int min_value);
// Rejects packed data whose tail bits (past `channels` in the last word of each group) are set.
void check_tails(const U64& a, int channels, const char* name);

// Conv geometry from the weight's dimensions, stride and padding (validated).
hbn::ConvGeometry conv_geometry(int in_channels, int out_channels, int kh, int kw, const py::object& stride,
                                const py::object& padding);
// Geometry of packed weights uint64 [OC, KH, KW, words]: in_channels None = 64 * words, else
// it must need exactly `words` words. Also checks the weights' tail bits.
hbn::ConvGeometry bits_geometry(const U64& weight_bits, const py::object& in_channels, const py::object& stride,
                                const py::object& padding);

// The input of a conv: [N, H, W, last] with last = IC floats or words_for(IC) words, and an
// output of at least one pixel.
struct InputShape {
  int n, h, w, oh, ow;
  int64_t rows() const { return static_cast<int64_t>(n) * oh * ow; }
};
InputShape check_conv_input(const py::array& x, const hbn::ConvGeometry& g, bool packed);

// The output transform of one call and the arrays it points into.
struct Transform {
  std::optional<F32> scale, bias, pixel_scale, threshold;
  std::optional<U8> flip;
  hbn::OutputTransform t;
  Transform(const py::object& scale, const py::object& bias, const py::object& pixel_scale, bool relu,
            const py::object& out_threshold, const py::object& out_flip, int64_t n_out, int64_t m_rows);
};

// A kAlignment-aligned buffer that grows on demand (guarded by the GIL).
class Workspace {
 public:
  void* get(size_t bytes);

 private:
  struct Free {
    void operator()(void* p) const;
  };
  std::unique_ptr<void, Free> p_;
  size_t bytes_ = 0;
};

// threads: None = the default pool (hbn_engine.set_num_threads); k = a pool of k threads kept
// by the caller (made again when k changes).
hbn::ThreadPool& pool_for(const py::object& threads, std::unique_ptr<hbn::ThreadPool>& own);

}  // namespace hbn_py

// A thin C++ layer over the C API (hbn.h): an owning, movable hbn::Model whose failures throw
// hbn::Error (status + message). Header-only: it uses nothing but the C functions, so it works
// with the shared and the static library alike.
#ifndef HBN_HBN_HPP_
#define HBN_HBN_HPP_

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "hbn/hbn.h"

namespace hbn {

class Error : public std::runtime_error {
 public:
  Error(hbn_status status, const std::string& message)
      : std::runtime_error(std::string(hbn_status_string(status)) + ": " + message), status_(status) {}
  hbn_status status() const noexcept { return status_; }

 private:
  hbn_status status_;
};

struct Op {
  std::string name, kind;
};

class Model {
 public:
  // Memory-maps the file.
  static Model load_file(const std::string& path) {
    hbn_model* m = nullptr;
    check(hbn_model_load_file(path.c_str(), &m), nullptr);
    return Model(m);
  }
  // Borrows the buffer: it must outlive the model.
  static Model load_buffer(const void* data, size_t size) {
    hbn_model* m = nullptr;
    check(hbn_model_load_buffer(data, size, &m), nullptr);
    return Model(m);
  }

  Model(Model&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
  Model& operator=(Model&& o) noexcept {
    if (this != &o) {
      hbn_model_free(m_);
      m_ = std::exchange(o.m_, nullptr);
    }
    return *this;
  }
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;
  ~Model() { hbn_model_free(m_); }

  hbn_model* get() const noexcept { return m_; }

  // {c, h, w} of one image.
  std::vector<int64_t> input_shape() const {
    int64_t c = 0, h = 0, w = 0;
    check(hbn_model_input_shape(m_, &c, &h, &w), m_);
    return {c, h, w};
  }
  // {batch, classes} or {batch, c, h, w}.
  std::vector<int64_t> output_shape(int64_t batch = 1) const {
    int64_t d[4];
    int nd = 0;
    check(hbn_model_output_shape(m_, batch, d, &nd), m_);
    return std::vector<int64_t>(d, d + nd);
  }
  size_t input_count(int64_t batch = 1) const {
    size_t n = 0;
    check(hbn_model_input_count(m_, batch, &n), m_);
    return n;
  }
  size_t output_count(int64_t batch = 1) const {
    size_t n = 0;
    check(hbn_model_output_count(m_, batch, &n), m_);
    return n;
  }
  std::vector<Op> ops() const {
    std::vector<Op> out;
    const int n = hbn_model_op_count(m_);
    for (int i = 0; i < n; ++i) out.push_back({hbn_model_op_name(m_, i), hbn_model_op_kind(m_, i)});
    return out;
  }
  size_t param_bytes() const noexcept { return hbn_model_param_bytes(m_); }
  uint32_t format_version() const noexcept { return hbn_model_format_version(m_); }
  std::string metadata_json() const {
    size_t len = 0;
    const char* s = hbn_model_metadata_json(m_, &len);
    return s ? std::string(s, len) : std::string();
  }
  int num_threads() const noexcept { return hbn_model_num_threads(m_); }
  void set_num_threads(int n) { check(hbn_model_set_num_threads(m_, n), m_); }

  // Runs a batch held in `input` (batch * c * h * w floats) and returns the output floats.
  std::vector<float> run(const std::vector<float>& input, int64_t batch = 1,
                         hbn_layout layout = HBN_LAYOUT_NCHW) {
    std::vector<float> out(output_count(batch));
    run(input.data(), input.size(), batch, layout, out.data(), out.size());
    return out;
  }
  void run(const float* input, size_t input_count, int64_t batch, hbn_layout layout, float* output,
           size_t output_count) {
    check(hbn_model_run(m_, input, batch, layout, input_count, output, output_count), m_);
  }

 private:
  explicit Model(hbn_model* m) noexcept : m_(m) {}
  static void check(hbn_status s, const hbn_model* m) {
    if (s != HBN_OK) throw Error(s, m ? hbn_model_last_error(m) : hbn_last_error());
  }
  hbn_model* m_ = nullptr;
};

}  // namespace hbn

#endif  // HBN_HBN_HPP_

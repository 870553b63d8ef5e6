// The C API over hbn::Executor. Every entry point runs its body inside guarded(), which turns
// any exception into a status code plus a message: nothing may unwind into a C caller.
#include "hbn/hbn.h"

#include <atomic>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <vector>

#include "runtime/executor.h"
#include "runtime/format.h"
#include "runtime/model_bytes.h"
#include "runtime/ops.h"

#ifndef HBN_VERSION_STRING
#define HBN_VERSION_STRING "unknown"
#endif

struct hbn_model {
  std::unique_ptr<hbn::Executor> exec;
  // The thread count as last set, readable while another thread sets it (the executor's own
  // counter is only written under its run lock, and read by runs).
  std::atomic<int> threads{1};
  std::mutex threads_mu;  // keeps `threads` in the order the executor was set
  std::vector<std::string> kinds;  // op_kind() returns by value: kept here for the C strings
  mutable std::mutex error_mu;
  std::string last_error;
};

namespace {

thread_local std::string t_last_error;
thread_local std::string t_model_error;  // hbn_model_last_error's copy, read under the model's lock

// Raised by the API's own argument checks.
struct ArgError {
  std::string message;
};

hbn_status fail(hbn_model* model, hbn_status status, const char* what) noexcept {
  // Assigning a string can itself run out of memory: the status still gets through.
  try {
    t_last_error = what;
  } catch (...) {
  }
  if (model) {
    try {
      std::lock_guard<std::mutex> lock(model->error_mu);
      model->last_error = what;
    } catch (...) {
    }
  }
  return status;
}

template <class F>
hbn_status guarded(hbn_model* model, F&& body) noexcept {
  try {
    body();
    return HBN_OK;
  } catch (const ArgError& e) {
    return fail(model, HBN_ERROR_INVALID_ARGUMENT, e.message.c_str());
  } catch (const hbn::FormatError& e) {
    return fail(model, HBN_ERROR_FORMAT, e.what());
  } catch (const std::system_error& e) {
    return fail(model, HBN_ERROR_IO, e.what());
  } catch (const std::bad_alloc&) {
    return fail(model, HBN_ERROR_OUT_OF_MEMORY, "out of memory");
  } catch (const std::length_error&) {
    return fail(model, HBN_ERROR_OUT_OF_MEMORY, "out of memory (allocation size too large)");
  } catch (const std::exception& e) {
    return fail(model, HBN_ERROR_INTERNAL, e.what());
  } catch (...) {
    return fail(model, HBN_ERROR_INTERNAL, "unknown internal error");
  }
}

void require(bool ok, const char* message) {
  if (!ok) throw ArgError{message};
}

void require_model(const hbn_model* model) { require(model != nullptr, "model is NULL"); }

// Floats in a batch of `batch` values of `per_item` floats, refusing overflow.
size_t batch_count(int64_t batch, int64_t per_item) {
  require(batch >= 1, "batch size must be >= 1");
  require(per_item <= 0 || batch <= std::numeric_limits<int64_t>::max() / per_item,
          "batch size too large (element count overflows)");
  const int64_t n = batch * per_item;
  require(static_cast<uint64_t>(n) <= std::numeric_limits<size_t>::max() / sizeof(float),
          "batch size too large (element count overflows)");
  return static_cast<size_t>(n);
}

int64_t output_per_item(const hbn::Executor& e) {
  const std::vector<int64_t> s = e.output_shape(1);
  int64_t n = 1;
  for (size_t d = 1; d < s.size(); ++d) n *= s[d];
  return n;
}

hbn_status load(hbn_model** out, hbn::ModelBytes (*open)(const void*, size_t), const void* a,
                size_t b) noexcept {
  if (out) *out = nullptr;
  return guarded(nullptr, [&] {
    require(out != nullptr, "out (hbn_model**) is NULL");
    auto m = std::make_unique<hbn_model>();
    m->exec = std::make_unique<hbn::Executor>(open(a, b));
    m->threads.store(m->exec->num_threads());
    const int ops = m->exec->op_count();
    m->kinds.reserve(static_cast<size_t>(ops));
    for (int i = 0; i < ops; ++i) m->kinds.push_back(m->exec->op_kind(i));
    *out = m.release();
  });
}

// Validates what every run takes (pointers, layout, element counts; `unit` names the input's
// elements in messages) and returns the input's NCHW element strides.
void check_io(const hbn_model* model, const void* input, int64_t batch, hbn_layout layout,
              size_t input_count, const char* unit, const float* output, size_t output_count,
              int64_t strides[4]) {
  require_model(model);
  require(input != nullptr, "input is NULL");
  require(output != nullptr, "output is NULL");
  require(layout == HBN_LAYOUT_NCHW || layout == HBN_LAYOUT_NHWC, "layout must be HBN_LAYOUT_NCHW or HBN_LAYOUT_NHWC");
  const hbn::ValueShape& s = model->exec->graph().input;
  const size_t need_in = batch_count(batch, s.c * s.h * s.w);
  if (input_count != need_in)
    throw ArgError{"input_count is " + std::to_string(input_count) + " " + unit + ", the model needs " +
                   std::to_string(need_in) + " (batch " + std::to_string(batch) + " x " +
                   std::to_string(s.c) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w) + ")"};
  const size_t need_out = batch_count(batch, output_per_item(*model->exec));
  if (output_count != need_out)
    throw ArgError{"output_count is " + std::to_string(output_count) + " floats, the model writes " +
                   std::to_string(need_out) + " for batch " + std::to_string(batch)};
  if (layout == HBN_LAYOUT_NCHW) {
    strides[0] = s.c * s.h * s.w, strides[1] = s.h * s.w, strides[2] = s.w, strides[3] = 1;
  } else {
    strides[0] = s.h * s.w * s.c, strides[1] = 1, strides[2] = s.w * s.c, strides[3] = s.c;
  }
}

// Validates a float run's arguments (finite input too) and returns the input's strides.
void check_run(const hbn_model* model, const float* input, int64_t batch, hbn_layout layout,
               size_t input_count, const float* output, size_t output_count, int64_t strides[4]) {
  check_io(model, input, batch, layout, input_count, "floats", output, output_count, strides);
  const hbn::ValueShape& s = model->exec->graph().input;
  const int64_t shape[4] = {batch, s.c, s.h, s.w};
  require(hbn::all_finite(input, shape, strides), "input contains NaN or infinity");
}

}  // namespace

extern "C" {

const char* hbn_version(void) { return HBN_VERSION_STRING; }

const char* hbn_status_string(hbn_status status) {
  switch (status) {
    case HBN_OK: return "HBN_OK";
    case HBN_ERROR_INVALID_ARGUMENT: return "HBN_ERROR_INVALID_ARGUMENT";
    case HBN_ERROR_IO: return "HBN_ERROR_IO";
    case HBN_ERROR_FORMAT: return "HBN_ERROR_FORMAT";
    case HBN_ERROR_OUT_OF_MEMORY: return "HBN_ERROR_OUT_OF_MEMORY";
    case HBN_ERROR_INTERNAL: return "HBN_ERROR_INTERNAL";
    default: break;
  }
  return "HBN_ERROR_UNKNOWN_STATUS";
}

const char* hbn_last_error(void) { return t_last_error.c_str(); }

hbn_status hbn_model_load_file(const char* path, hbn_model** out) {
  if (!path) {
    if (out) *out = nullptr;
    return fail(nullptr, HBN_ERROR_INVALID_ARGUMENT, "path is NULL");
  }
  return load(out, [](const void* p, size_t) { return hbn::ModelBytes::map_file(static_cast<const char*>(p)); },
              path, 0);
}

hbn_status hbn_model_load_buffer(const void* data, size_t size, hbn_model** out) {
  if (!data) {
    if (out) *out = nullptr;
    return fail(nullptr, HBN_ERROR_INVALID_ARGUMENT, "data is NULL");
  }
  return load(out, [](const void* p, size_t n) { return hbn::ModelBytes::borrow(static_cast<const uint8_t*>(p), n); },
              data, size);
}

void hbn_model_free(hbn_model* model) { delete model; }

const char* hbn_model_last_error(const hbn_model* model) {
  if (!model) return "model is NULL";
  try {
    std::lock_guard<std::mutex> lock(model->error_mu);
    t_model_error = model->last_error;
  } catch (...) {
    return "out of memory (copying the error message)";
  }
  return t_model_error.c_str();
}

hbn_status hbn_model_input_shape(const hbn_model* model, int64_t* c, int64_t* h, int64_t* w) {
  return guarded(const_cast<hbn_model*>(model), [&] {
    require_model(model);
    require(c && h && w, "c, h and w must not be NULL");
    const hbn::ValueShape& s = model->exec->graph().input;
    *c = s.c, *h = s.h, *w = s.w;
  });
}

hbn_status hbn_model_output_shape(const hbn_model* model, int64_t batch, int64_t dims[4], int* ndim) {
  return guarded(const_cast<hbn_model*>(model), [&] {
    require_model(model);
    require(dims && ndim, "dims and ndim must not be NULL");
    batch_count(batch, output_per_item(*model->exec));
    const std::vector<int64_t> s = model->exec->output_shape(batch);
    for (int d = 0; d < 4; ++d) dims[d] = d < static_cast<int>(s.size()) ? s[d] : 0;
    *ndim = static_cast<int>(s.size());
  });
}

hbn_status hbn_model_input_count(const hbn_model* model, int64_t batch, size_t* count) {
  return guarded(const_cast<hbn_model*>(model), [&] {
    require_model(model);
    require(count != nullptr, "count is NULL");
    const hbn::ValueShape& s = model->exec->graph().input;
    *count = batch_count(batch, s.c * s.h * s.w);
  });
}

hbn_status hbn_model_output_count(const hbn_model* model, int64_t batch, size_t* count) {
  return guarded(const_cast<hbn_model*>(model), [&] {
    require_model(model);
    require(count != nullptr, "count is NULL");
    *count = batch_count(batch, output_per_item(*model->exec));
  });
}

int hbn_model_op_count(const hbn_model* model) { return model ? model->exec->op_count() : 0; }

const char* hbn_model_op_name(const hbn_model* model, int i) {
  if (!model || i < 0 || i >= model->exec->op_count()) return nullptr;
  return model->exec->op_name(i).c_str();
}

const char* hbn_model_op_kind(const hbn_model* model, int i) {
  if (!model || i < 0 || i >= static_cast<int>(model->kinds.size())) return nullptr;
  return model->kinds[static_cast<size_t>(i)].c_str();
}

size_t hbn_model_param_bytes(const hbn_model* model) { return model ? model->exec->param_bytes() : 0; }

size_t hbn_model_in_place_bytes(const hbn_model* model) { return model ? model->exec->in_place_bytes() : 0; }

uint32_t hbn_model_format_version(const hbn_model* model) {
  return model ? model->exec->format_version() : 0;
}

const char* hbn_model_metadata_json(const hbn_model* model, size_t* len) {
  if (!model) {
    if (len) *len = 0;
    return nullptr;
  }
  const std::string& s = model->exec->metadata_json();
  if (len) *len = s.size();
  return s.c_str();
}

hbn_status hbn_model_set_num_threads(hbn_model* model, int n) {
  return guarded(model, [&] {
    require_model(model);
    require(n >= 1, "num_threads must be >= 1");
    std::lock_guard<std::mutex> lock(model->threads_mu);
    model->exec->set_num_threads(n);
    model->threads.store(n);
  });
}

int hbn_model_num_threads(const hbn_model* model) { return model ? model->threads.load() : 0; }

hbn_status hbn_model_run(hbn_model* model, const float* input, int64_t batch, hbn_layout layout,
                         size_t input_count, float* output, size_t output_count) {
  return guarded(model, [&] {
    int64_t strides[4];
    check_run(model, input, batch, layout, input_count, output, output_count, strides);
    model->exec->run(input, batch, strides, output);
  });
}

hbn_status hbn_model_run_u8(hbn_model* model, const uint8_t* input, int64_t batch, hbn_layout layout,
                            size_t input_count, float* output, size_t output_count) {
  return guarded(model, [&] {
    int64_t strides[4];
    check_io(model, input, batch, layout, input_count, "bytes", output, output_count, strides);
    require(model->exec->takes_pixels(),
            "this model takes float input only: uint8 images need a model exported with "
            "input_norm=(mean, std) (hbn_model_takes_pixels() is 0)");
    model->exec->run_u8(input, batch, strides, output);
  });
}

int hbn_model_takes_pixels(const hbn_model* model) { return model && model->exec->takes_pixels() ? 1 : 0; }

hbn_status hbn_model_profile(hbn_model* model, const float* input, int64_t batch, hbn_layout layout,
                             size_t input_count, float* output, size_t output_count, int repeats,
                             double* step_seconds, size_t step_count, double* run_seconds) {
  return guarded(model, [&] {
    int64_t strides[4];
    check_run(model, input, batch, layout, input_count, output, output_count, strides);
    require(repeats >= 1, "repeats must be >= 1");
    const size_t steps = static_cast<size_t>(model->exec->op_count()) + 2;
    const size_t need = static_cast<size_t>(repeats) * steps;
    if (step_seconds && step_count < need)
      throw ArgError{"step_count is " + std::to_string(step_count) + ", profiling " +
                     std::to_string(repeats) + " repeats needs " + std::to_string(need)};
    std::vector<double> times, totals;
    model->exec->profile(input, batch, strides, output, repeats, times, totals);
    if (step_seconds) std::memcpy(step_seconds, times.data(), need * sizeof(double));
    if (run_seconds) std::memcpy(run_seconds, totals.data(), totals.size() * sizeof(double));
  });
}

}  // extern "C"

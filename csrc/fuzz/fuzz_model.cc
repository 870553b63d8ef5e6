// libFuzzer target over the whole native load-and-run path: parse_model (format.cc),
// build_graph (graph.cc), the executor's kernel preparation and planning, and one run of every
// model it accepts (batch 1), on the compiled kernel path and thread count a hash of the input
// picks. Built with -fsanitize=fuzzer,address,undefined by .ci/fuzz.sh (cmake -DHBN_BUILD_FUZZ=ON).
//
// What counts as a finding: any sanitizer report, leak, crash, timeout or out-of-memory, and
// any exception other than FormatError from loading (the loader promises FormatError for every
// bad file) or from running an accepted model (which must always run).
//
// Runs are capped so each input takes milliseconds, through the executor's own resource limits
// (runtime/limits.h) set far below their defaults: a model whose batch-1 arena or per-image
// work (MACs, pooling-window reads) exceeds them is refused at load with ResourceLimitError, a
// FormatError - the promised outcome - before anything is allocated or computed.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "hbn/isa.h"
#include "hbn/types.h"
#include "runtime/executor.h"
#include "runtime/format.h"
#include "runtime/graph.h"
#include "runtime/limits.h"
#include "runtime/model_bytes.h"

extern "C" long hbn_fuzz_loaded, hbn_fuzz_ran;

namespace {

hbn::Limits fuzz_limits() {
  hbn::Limits l;
  l.max_arena_bytes = l.max_sample_arena_bytes = uint64_t(192) << 20;
  l.max_kept_arena_bytes = uint64_t(64) << 20;
  l.max_macs_per_sample = 40000000;
  l.max_pool_reads_per_sample = 40000000;
  return l;
}

[[noreturn]] void finding(const char* what, const char* detail) {
  std::fprintf(stderr, "fuzz_model: %s: %s\n", what, detail);
  std::abort();
}

uint64_t mix(const uint8_t* data, size_t size) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ size;
  for (size_t i = 0; i < size; i += 1 + size / 64) h = (h ^ data[i]) * 0x100000001b3ULL;
  return h;
}

void load_and_run(const uint8_t* data, size_t size, bool bit_passing, uint64_t h) {
  std::unique_ptr<hbn::Executor> ex;
  try {
    // Borrowed: the C API's zero-copy path (libFuzzer owns the buffer for the call).
    static const hbn::Limits limits = fuzz_limits();
    ex = std::make_unique<hbn::Executor>(hbn::ModelBytes::borrow(data, size), bit_passing, limits);
  } catch (const hbn::FormatError&) {
    return;  // the promised outcome for a bad file
  } catch (const std::exception& e) {
    finding("load threw something other than FormatError", e.what());
  }
  ++hbn_fuzz_loaded;
  const hbn::Graph& g = ex->graph();
  const hbn::ValueShape& is = g.input;
  std::vector<float> x(static_cast<size_t>(is.per_image()));
  // Values around the sign thresholds, exact zeros (sign(0) = +1) and a few large ones.
  uint64_t r = h | 1;
  for (float& v : x) {
    r ^= r << 13, r ^= r >> 7, r ^= r << 17;
    const int kind = static_cast<int>(r % 16);
    v = kind == 0 ? 0.0f : kind == 1 ? -0.0f : kind == 2 ? 1e30f : static_cast<float>(static_cast<int64_t>(r >> 40) % 4001 - 2000) / 1000.0f;
  }
  const std::vector<int64_t> os = ex->output_shape(1);
  int64_t out_elems = 1;
  for (int64_t d : os) out_elems *= d;
  std::vector<float> y(static_cast<size_t>(out_elems));
  const int64_t strides[4] = {is.c * is.h * is.w, is.h * is.w, is.w, 1};
  try {
    ex->set_num_threads(1 + static_cast<int>((h >> 8) % 2));
    ex->run(x.data(), 1, strides, y.data());
    ++hbn_fuzz_ran;
  } catch (const std::exception& e) {
    finding("an accepted model failed to run", e.what());
  }
}

}  // namespace

// Inputs that loaded / that also ran (fuzz_replay reports them).
extern "C" {
long hbn_fuzz_loaded = 0, hbn_fuzz_ran = 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint64_t h = mix(data, size);
  // One compiled kernel path per input, so every path meets every accepted model.
  static const std::vector<std::string> paths = [] {
    std::vector<std::string> v;
    for (const std::string& p : hbn::isa_paths())
      if (hbn::isa_supported(p)) v.push_back(p);
    return v;
  }();
  hbn::set_isa(paths[h % paths.size()]);
  load_and_run(data, size, /*bit_passing=*/((h >> 4) & 1) != 0, h);
  hbn::reset_isa();
  return 0;
}

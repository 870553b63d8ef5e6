// libFuzzer target over the whole native load-and-run path: parse_model (format.cc),
// build_graph (graph.cc), the executor's kernel preparation and planning, and one run of every
// model it accepts (batch 1), on the compiled kernel path and thread count a hash of the input
// picks. Built with -fsanitize=fuzzer,address,undefined by .ci/fuzz.sh (cmake -DHBN_BUILD_FUZZ=ON).
//
// What counts as a finding: any sanitizer report, leak, crash, timeout or out-of-memory, and
// any exception other than FormatError from loading (the loader promises FormatError for every
// bad file) or from running an accepted model (which must always run).
//
// Runs are capped so each input takes milliseconds: a model whose batch-1 activations and
// scratch (estimated from the graph's value shapes) exceed kMaxBytes, or whose work (MACs,
// pooled elements) exceeds kMaxWork, is loaded but not run. The estimate comes from the graph,
// not Executor::planned_bytes, because planning allocates the arena it sizes: asking would
// allocate the huge buffer we mean to avoid.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <vector>

#include "hbn/isa.h"
#include "hbn/types.h"
#include "runtime/executor.h"
#include "runtime/format.h"
#include "runtime/graph.h"

extern "C" long hbn_fuzz_loaded, hbn_fuzz_ran;

namespace {

constexpr double kMaxBytes = 192.0 * (1 << 20);
constexpr double kMaxWork = 4e7;

[[noreturn]] void finding(const char* what, const char* detail) {
  std::fprintf(stderr, "fuzz_model: %s: %s\n", what, detail);
  std::abort();
}

struct Cost {
  double bytes = 0, work = 0;
};

// Upper estimates for a batch of one image: every value held at once as floats plus each op's
// largest scratch (padded input copies, gathered receptive fields), and the op's arithmetic.
Cost estimate(const hbn::Graph& g) {
  Cost c;
  c.bytes = 4.0 * static_cast<double>(g.input.per_image());
  double scratch = 0;
  for (const hbn::Node& nd : g.nodes) {
    const hbn::ValueShape& in = g.shape(nd.inputs[0]);
    const double out_elems = static_cast<double>(nd.out.per_image());
    c.bytes += 4.0 * out_elems + 64;
    double s = 0;
    switch (nd.type) {
      case hbn::OpType::conv_f32:
      case hbn::OpType::conv_wbin:
      case hbn::OpType::conv_fbin: {
        const hbn::ConvGeometry& k = nd.geom;
        const double taps = static_cast<double>(k.kernel_h) * k.kernel_w;
        const double K = taps * k.in_channels, M = static_cast<double>(nd.out.h) * nd.out.w;
        const double padded = static_cast<double>(in.h + 2 * k.pad_h) * (in.w + 2 * k.pad_w) * in.c;
        s = 4.0 * padded + M * (K / 8.0 + 64.0 + 32.0) + 4.0 * static_cast<double>(in.per_image()) + (1 << 20);
        const double macs = M * k.out_channels * K;
        c.work += nd.type == hbn::OpType::conv_fbin ? macs / 16.0 + M * k.out_channels : macs;
        break;
      }
      case hbn::OpType::max_pool:
      case hbn::OpType::avg_pool:
        c.work += out_elems * nd.kh * nd.kw;
        break;
      case hbn::OpType::adaptive_avg_pool:
        c.work += out_elems * (static_cast<double>(in.h) / std::max<int64_t>(1, nd.out.h) + 1) *
                  (static_cast<double>(in.w) / std::max<int64_t>(1, nd.out.w) + 1);
        break;
      case hbn::OpType::lrn:
        c.work += out_elems * nd.size;
        break;
      default:
        c.work += out_elems * static_cast<double>(nd.inputs.size());
    }
    scratch = std::max(scratch, s);
  }
  c.bytes += scratch;
  return c;
}

uint64_t mix(const uint8_t* data, size_t size) {
  uint64_t h = 0x9e3779b97f4a7c15ULL ^ size;
  for (size_t i = 0; i < size; i += 1 + size / 64) h = (h ^ data[i]) * 0x100000001b3ULL;
  return h;
}

void load_and_run(const uint8_t* data, size_t size, bool bit_passing, uint64_t h) {
  std::unique_ptr<hbn::Executor> ex;
  try {
    ex = std::make_unique<hbn::Executor>(std::vector<uint8_t>(data, data + size), bit_passing);
  } catch (const hbn::FormatError&) {
    return;  // the promised outcome for a bad file
  } catch (const std::exception& e) {
    finding("load threw something other than FormatError", e.what());
  }
  ++hbn_fuzz_loaded;
  const hbn::Graph& g = ex->graph();
  const Cost cost = estimate(g);
  if (cost.bytes > kMaxBytes || cost.work > kMaxWork) return;

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
  static const std::vector<hbn::Isa> paths = [] {
    std::vector<hbn::Isa> v;
    for (hbn::Isa i : {hbn::Isa::scalar, hbn::Isa::avx2, hbn::Isa::avx512, hbn::Isa::neon})
      if (hbn::isa_supported(i)) v.push_back(i);
    return v;
  }();
  hbn::set_isa(paths[h % paths.size()]);
  load_and_run(data, size, /*bit_passing=*/((h >> 4) & 1) != 0, h);
  hbn::reset_isa();
  return 0;
}

// Runtime tests without Python: the loader rejects every truncation and hostile field with
// FormatError, pooling follows PyTorch's size rules, a small graph computes the right numbers,
// and a planned run performs no heap allocation.
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bitpack/bitpack.h"
#include "hbn/isa.h"
#include "runtime/executor.h"
#include "runtime/ops.h"
#include "runtime/graph.h"
#include "tests/model_writer.h"

// Global allocation counter (to check that run() does not allocate once planned). new and
// delete are replaced as a pair (malloc/free), which GCC cannot see across the replacement.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
static std::atomic<long> g_allocs{0};
#ifndef HBN_TSAN  // ThreadSanitizer builds keep its allocator (the count then stays 0)
void* operator new(std::size_t n) {
  ++g_allocs;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

static int g_failures = 0;
#define CHECK(cond)                                                        \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                        \
    }                                                                      \
  } while (0)

namespace {

using hbn_test::Writer;

// input 2x4x5 -> relu -> max_pool 2/2 ceil -> flatten (2*2*3 = 12) -> linear 12 -> 3
std::vector<uint8_t> tiny_model(std::vector<float>* fc_weight, std::vector<float>* fc_bias) {
  Writer w;
  fc_weight->resize(3 * 12);
  fc_bias->assign({0.5f, -1.0f, 2.0f});
  for (size_t i = 0; i < fc_weight->size(); ++i) (*fc_weight)[i] = static_cast<float>((i * 7) % 5) - 2.0f;
  const uint32_t tw = w.tensor(*fc_weight, {3, 12, 1, 1});
  const uint32_t tb = w.tensor(*fc_bias, {3});
  w.op(4, "relu", {0}, {}, {});
  w.op(5, "pool", {1}, {}, {{hbn::kKernelH, 2}, {hbn::kKernelW, 2}, {hbn::kStrideH, 2},
                            {hbn::kStrideW, 2}, {hbn::kPadH, 0}, {hbn::kPadW, 0}, {hbn::kCeilMode, 1}});
  w.op(10, "flatten", {2}, {}, {});
  w.op(1, "fc", {3}, {tw, hbn::kAbsent, tb}, {{hbn::kStrideH, 1}, {hbn::kStrideW, 1},
                                               {hbn::kPadH, 0}, {hbn::kPadW, 0}, {hbn::kLinear, 1}});
  return w.finish(2, 4, 5);
}

void test_pool_sizes() {
  // torch: MaxPool2d(3, 2, ceil_mode=True) on 55 -> 27, on 13 -> 6; floor: 55 -> 27, 6 -> 2
  CHECK(hbn::pool_out_size(55, 3, 2, 0, true) == 27);
  CHECK(hbn::pool_out_size(13, 3, 2, 0, true) == 6);
  CHECK(hbn::pool_out_size(14, 3, 2, 0, true) == 7);
  CHECK(hbn::pool_out_size(14, 3, 2, 0, false) == 6);
  // the last ceil window must start inside the input or left padding: 5, k2 s2 p1 -> 3 not 4
  CHECK(hbn::pool_out_size(5, 2, 2, 1, true) == 3);
  CHECK(hbn::pool_out_size(109, 3, 2, 0, true) == 54);
}

void test_tiny_model() {
  std::vector<float> fw, fb;
  hbn::Executor ex(tiny_model(&fw, &fb));
  CHECK(ex.output_shape(2) == (std::vector<int64_t>{2, 3}));
  const int n = 2, c = 2, h = 4, w = 5;
  std::vector<float> x(n * c * h * w);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i) * 1.7f) * 3.0f;
  const int64_t strides[4] = {c * h * w, h * w, w, 1};
  std::vector<float> y(n * 3);
  ex.run(x.data(), n, strides, y.data());
  for (int b = 0; b < n; ++b) {
    // reference: relu, 2x2 max pool with a partial last column, CHW flatten, linear
    float feat[12];
    for (int ch = 0; ch < c; ++ch)
      for (int oy = 0; oy < 2; ++oy)
        for (int ox = 0; ox < 3; ++ox) {
          float m = -INFINITY;
          for (int yy = oy * 2; yy < std::min(oy * 2 + 2, h); ++yy)
            for (int xx = ox * 2; xx < std::min(ox * 2 + 2, w); ++xx)
              m = std::max(m, std::max(0.0f, x[((b * c + ch) * h + yy) * w + xx]));
          feat[(ch * 2 + oy) * 3 + ox] = m;
        }
    for (int o = 0; o < 3; ++o) {
      double acc = fb[o];
      for (int k = 0; k < 12; ++k) acc += double(fw[o * 12 + k]) * feat[k];
      CHECK(std::fabs(y[b * 3 + o] - acc) < 1e-4 * (1 + std::fabs(acc)));
    }
  }
}

// Binary conv (input packing + BConv2d, bits passed between the two) and the runtime's own
// ops: once planned for a batch size, run() does not allocate. (The float-conv SGEMM driver is
// left out: it hands parallel_for a large lambda, which std::function may heap-allocate.)
void test_run_does_not_allocate() {
  Writer w;
  std::vector<uint64_t> bits1(8 * 3 * 3 * 1), bits2(4 * 1 * 1 * 1);
  for (size_t i = 0; i < bits1.size(); ++i) bits1[i] = (0x9E3779B97F4A7C15ull * (i + 1)) & 0x3Full;
  for (size_t i = 0; i < bits2.size(); ++i) bits2[i] = (0xC2B2AE3D27D4EB4Full * (i + 1)) & 0xFFull;
  const uint32_t b1 = w.bits_tensor(bits1, {8, 3, 3, 1});
  const uint32_t b2 = w.bits_tensor(bits2, {4, 1, 1, 1});
  const uint32_t thr = w.tensor(std::vector<float>(8, 0.25f), {8});
  const std::vector<std::pair<uint32_t, int64_t>> conv = {
      {hbn::kStrideH, 1}, {hbn::kStrideW, 1}, {hbn::kPadH, 1}, {hbn::kPadW, 1}, {hbn::kAct, 1}};
  auto with = [&](std::vector<std::pair<uint32_t, int64_t>> a, uint32_t ic) {
    a.push_back({hbn::kInChannels, ic});
    return a;
  };
  w.op(3, "b1", {0}, {b1, hbn::kAbsent, hbn::kAbsent, hbn::kAbsent, hbn::kAbsent, hbn::kAbsent,
                      hbn::kAbsent}, with(conv, 6));
  w.op(3, "b2", {1}, {b2, hbn::kAbsent, hbn::kAbsent, thr, hbn::kAbsent, hbn::kAbsent,
                      hbn::kAbsent}, with({{hbn::kStrideH, 1}, {hbn::kStrideW, 1}, {hbn::kPadH, 0},
                                           {hbn::kPadW, 0}}, 8));
  w.op(5, "pool", {2}, {}, {{hbn::kKernelH, 3}, {hbn::kKernelW, 3}, {hbn::kStrideH, 2},
                            {hbn::kStrideW, 2}, {hbn::kPadH, 1}, {hbn::kPadW, 1}, {hbn::kCeilMode, 1}});
  w.op(6, "avg", {3}, {}, {{hbn::kKernelH, 3}, {hbn::kKernelW, 3}, {hbn::kStrideH, 1},
                           {hbn::kStrideW, 1}, {hbn::kPadH, 1}, {hbn::kPadW, 1}, {hbn::kCountIncludePad, 0}});
  w.op(9, "cat", {4, 3}, {}, {});
  w.op(7, "gap", {5}, {}, {{hbn::kOutH, 1}, {hbn::kOutW, 1}});
  w.op(10, "flatten", {6}, {}, {});
  w.op(11, "softmax", {7}, {}, {});
  hbn::Executor ex(w.finish(6, 7, 9));
  CHECK(ex.value_is_bits(0));  // b1 is the input's only consumer: packed straight from NCHW
  CHECK(ex.value_is_bits(1));  // b1 writes b2's input bits directly
  CHECK(ex.output_shape(3) == (std::vector<int64_t>{3, 8}));  // concat of 4 + 4 channels
  std::vector<float> x(3 * 6 * 7 * 9), y(3 * 8);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(static_cast<float>(i) * 0.37f);
  const int64_t strides[4] = {6 * 7 * 9, 7 * 9, 9, 1};
  ex.run(x.data(), 3, strides, y.data());
  for (int b = 0; b < 3; ++b) {
    double sum = 0;
    for (int k = 0; k < 8; ++k) sum += y[b * 8 + k];
    CHECK(std::fabs(sum - 1.0) < 1e-5);
  }
  ex.run(x.data(), 1, strides, y.data());  // plans batch 1 as well
  const long before = g_allocs.load();
  ex.run(x.data(), 3, strides, y.data());
  ex.run(x.data(), 1, strides, y.data());
  CHECK(g_allocs.load() == before);
}

// A residual add feeding a FullBinConv and a float add writes the conv's packed input in its own
// pass (a "packed copy"); so does a max-pool feeding a FullBinConv and the add. Exact against
// the all-float reference executor, and still allocation-free once planned.
void test_packed_copies() {
  Writer w;
  const int64_t c = 70;  // a part-full second word
  std::vector<uint64_t> bits(c * 3 * 3 * 2), bits2(c * 1 * 1 * 2);
  for (size_t i = 0; i < bits.size(); ++i) bits[i] = (0x9E3779B97F4A7C15ull * (i + 1)) & (i % 2 ? 0x3Full : ~0ull);
  for (size_t i = 0; i < bits2.size(); ++i) bits2[i] = (0xC2B2AE3D27D4EB4Full * (i + 1)) & (i % 2 ? 0x3Full : ~0ull);
  std::vector<float> thr(c);
  std::vector<uint8_t> flip(c);
  for (int64_t ch = 0; ch < c; ++ch) {
    thr[ch] = 0.1f * std::sin(static_cast<float>(ch));
    flip[ch] = ch % 4 == 1;
  }
  const uint32_t tw = w.bits_tensor(bits, {c, 3, 3, 2}), tw2 = w.bits_tensor(bits2, {c, 1, 1, 2});
  const uint32_t tt = w.tensor(thr, {c}), tf = w.raw_tensor(3, flip.data(), flip.size(), {c});
  const uint32_t ts = w.tensor(std::vector<float>(c, 0.05f), {c});
  const std::vector<std::pair<uint32_t, int64_t>> conv = {
      {hbn::kStrideH, 1}, {hbn::kStrideW, 1}, {hbn::kPadH, 1}, {hbn::kPadW, 1}, {hbn::kInChannels, c}};
  const std::vector<std::pair<uint32_t, int64_t>> conv1x1 = {
      {hbn::kStrideH, 1}, {hbn::kStrideW, 1}, {hbn::kPadH, 0}, {hbn::kPadW, 0}, {hbn::kInChannels, c}};
  w.op(4, "relu", {0}, {}, {});                                                   // v1
  w.op(5, "pool", {1}, {}, {{hbn::kKernelH, 3}, {hbn::kKernelW, 3}, {hbn::kStrideH, 1},
                            {hbn::kStrideW, 1}, {hbn::kPadH, 1}, {hbn::kPadW, 1}});  // v2
  w.op(3, "b1", {2}, {tw, ts, hbn::kAbsent, tt, tf, hbn::kAbsent, hbn::kAbsent}, conv);  // v3
  w.op(8, "add", {3, 2}, {}, {{hbn::kAct, 1}});                                   // v4
  w.op(3, "b2", {4}, {tw, ts, hbn::kAbsent, hbn::kAbsent, hbn::kAbsent, hbn::kAbsent, hbn::kAbsent}, conv);  // v5
  w.op(3, "b3", {4}, {tw2, ts, hbn::kAbsent, tt, tf, hbn::kAbsent, hbn::kAbsent}, conv1x1);  // v6
  w.op(8, "add2", {5, 4}, {}, {});                                                // v7
  w.op(8, "add3", {7, 6}, {}, {});                                                // v8
  const std::vector<uint8_t> file = w.finish(static_cast<uint32_t>(c), 6, 5);
  hbn::Executor ex(file), ref(file, false);
  CHECK(ex.packed_copies(1) == 1);  // pool -> b1
  CHECK(ex.packed_copies(3) == 2);  // add -> b2 (plain sign) and b3 (thresholds): two rules
  CHECK(ref.packed_copies(1) == 0 && ref.packed_copies(3) == 0);
  std::vector<float> x(2 * c * 6 * 5), y(x.size()), y_ref(x.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(static_cast<float>(i) * 0.61f);
  x[7] = 0.0f;
  x[8] = -0.0f;
  const int64_t strides[4] = {c * 6 * 5, 6 * 5, 5, 1};
  for (const std::string& isa : hbn::isa_paths()) {
    if (!hbn::set_isa(isa)) continue;
    ex.run(x.data(), 2, strides, y.data());
    ref.run(x.data(), 2, strides, y_ref.data());
    CHECK(std::memcmp(y.data(), y_ref.data(), y.size() * sizeof(float)) == 0);
  }
  hbn::reset_isa();
  const long before = g_allocs.load();
  ex.run(x.data(), 2, strides, y.data());
  CHECK(g_allocs.load() == before);
}

// Bit-domain max-pool and the fused pool+pack agree bit for bit with pooling the floats and
// packing them (thresholds with both flips, padding, ceil-mode edge windows, a partial word).
void test_pool_in_bits() {
  const int64_t n = 2, h = 7, w = 6, c = 70, words = hbn::words_for(c);
  hbn::ThreadPool pool(2);
  std::vector<float> thr(c);
  std::vector<uint8_t> flip(c);
  std::vector<hbn::word_t> or_mask(words, 0);
  for (int64_t ch = 0; ch < c; ++ch) {
    thr[ch] = 0.3f * std::sin(static_cast<float>(ch));
    flip[ch] = ch % 3 == 1;
    if (flip[ch]) or_mask[ch / 64] |= hbn::word_t{1} << (ch % 64);
  }
  std::vector<float> x(n * h * w * c);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::cos(static_cast<float>(i) * 1.37f);
  std::vector<hbn::word_t> xb(n * h * w * words + 8);
  hbn::pack_rows(x.data(), n * h * w, static_cast<int>(c), c, xb.data(), thr.data(), flip.data());
  for (int pad = 0; pad <= 1; ++pad)
    for (int stride = 1; stride <= 2; ++stride) {
      const int k = 3;
      const int64_t oh = hbn::pool_out_size(h, k, stride, pad, true);
      const int64_t ow = hbn::pool_out_size(w, k, stride, pad, true);
      const hbn::PoolParams pp{k, k, stride, stride, pad, pad, oh, ow, true};
      std::vector<float> yf(n * oh * ow * c);
      hbn::max_pool(x.data(), n, h, w, c, pp, yf.data(), pool);
      std::vector<hbn::word_t> want(n * oh * ow * words + 8), got(want.size()), fused(want.size());
      hbn::pack_rows(yf.data(), n * oh * ow, static_cast<int>(c), c, want.data(), thr.data(), flip.data());
      hbn::max_pool_bits(xb.data(), n, h, w, words, pp, or_mask.data(), got.data(), pool);
      hbn::max_pool_pack(x.data(), n, h, w, c, pp, thr.data(), flip.data(), fused.data(), pool);
      for (int64_t i = 0; i < n * oh * ow * words; ++i) {
        CHECK(got[i] == want[i]);
        CHECK(fused[i] == want[i]);
      }
    }
}

void test_truncations_and_flips() {
  std::vector<float> fw, fb;
  const std::vector<uint8_t> good = tiny_model(&fw, &fb);
  for (size_t cut = 0; cut < good.size(); ++cut) {
    bool threw = false;
    try {
      hbn::Executor ex(std::vector<uint8_t>(good.begin(), good.begin() + cut));
    } catch (const hbn::FormatError&) {
      threw = true;
    }
    CHECK(threw);
  }
  // Every single-byte corruption of the header, graph and table loads or throws FormatError.
  srand(3);
  for (size_t pos = 0; pos < good.size(); ++pos) {
    std::vector<uint8_t> bad = good;
    bad[pos] ^= static_cast<uint8_t>(1 + rand() % 255);
    try {
      hbn::Executor ex(std::move(bad));
      std::vector<float> x(static_cast<size_t>(ex.graph().input.per_image()), 1.0f);
      const auto& s = ex.graph().input;
      const int64_t strides[4] = {s.c * s.h * s.w, s.h * s.w, s.w, 1};
      auto shape = ex.output_shape(1);
      int64_t count = 1;
      for (auto d : shape) count *= d;
      std::vector<float> y(static_cast<size_t>(count));
      ex.run(x.data(), 1, strides, y.data());
    } catch (const hbn::FormatError&) {
    }
  }
}

// num_threads() while another thread changes the count: the getter reads an atomic, not the
// pool's plain int under set_num_threads' lock (a data race ThreadSanitizer reported; under
// TSan this test is the regression test, without it it checks the values stay sane).
void test_num_threads_while_setting() {
  std::vector<float> fw, fb;
  hbn::Executor ex(tiny_model(&fw, &fb));
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    while (!done.load()) {
      const int t = ex.num_threads();
      if (t < 1 || t > 2) ++bad;
    }
  });
  for (int i = 0; i < 50; ++i) ex.set_num_threads(1 + i % 2);
  done = true;
  reader.join();
  CHECK(bad.load() == 0);
  CHECK(ex.num_threads() == 2);
}

// Sizes that would overflow are refused, not wrapped (planned_bytes(2^62) once returned ~2 MB).
void test_checked_sizes() {
  std::vector<float> fw, fb;
  hbn::Executor ex(tiny_model(&fw, &fb));
  bool limit = false, bad_n = false;
  try {
    ex.planned_bytes(int64_t(1) << 62);
  } catch (const hbn::ResourceLimitError&) {
    limit = true;
  }
  try {
    ex.output_shape(-5);
  } catch (const std::invalid_argument&) {
    bad_n = true;
  }
  CHECK(limit);
  CHECK(bad_n);
}

}  // namespace

int main() {
  test_pool_sizes();
  test_tiny_model();
  test_run_does_not_allocate();
  test_pool_in_bits();
  test_packed_copies();
  test_truncations_and_flips();
  test_num_threads_while_setting();
  test_checked_sizes();
  if (g_failures) {
    std::fprintf(stderr, "%d failure(s)\n", g_failures);
    return 1;
  }
  std::printf("test_runtime: all passed\n");
  return 0;
}

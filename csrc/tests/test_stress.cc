// Concurrency stress for the ThreadSanitizer build (.ci/sanitize.sh), also run by every normal
// build: threads calling Executor::run, set_num_threads, num_threads and planned_bytes on the
// same executors at once (every model of the fuzz seed corpus, which covers every op type), and
// kernels sharing one pool from several threads while another thread resizes it. Every result
// must equal the single-threaded one bit for bit (the kernels split work, never reorder sums).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bconv/bconv.h"
#include "fconv/conv_f32.h"
#include "wbconv/wbconv.h"
#include "hbn/threadpool.h"
#include "runtime/executor.h"
#include "fconv/gemm_driver.h"
#include "tests/check.h"

using namespace hbn;

namespace {

struct Loaded {
  std::string name;
  std::unique_ptr<Executor> ex;
  std::vector<float> x[2];    // batch 1 and batch 2 inputs
  std::vector<float> want[2];  // their single-threaded outputs
};

std::vector<float> run_once(Executor& ex, const std::vector<float>& x, int64_t n) {
  const ValueShape& s = ex.graph().input;
  const int64_t strides[4] = {s.c * s.h * s.w, s.h * s.w, s.w, 1};
  int64_t count = 1;
  for (int64_t d : ex.output_shape(n)) count *= d;
  std::vector<float> y(static_cast<size_t>(count));
  ex.run(x.data(), n, strides, y.data());
  return y;
}

std::vector<Loaded> load_corpus() {
  std::vector<Loaded> out;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(HBN_CORPUS_DIR))
    if (e.path().extension() == ".hbn") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::mt19937 rng(7);
  for (const auto& p : files) {
    std::ifstream f(p, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    Loaded l;
    l.name = p.filename().string();
    l.ex = std::make_unique<Executor>(std::move(bytes));
    for (int b = 0; b < 2; ++b) {
      l.x[b] = hbn_test::random_floats(static_cast<size_t>((b + 1) * l.ex->graph().input.per_image()), rng, -2.f, 2.f);
      l.want[b] = run_once(*l.ex, l.x[b], b + 1);
    }
    out.push_back(std::move(l));
  }
  return out;
}

void executors_under_concurrent_calls(std::vector<Loaded>& models) {
  std::atomic<bool> stop{false};
  std::atomic<long> runs{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 12; ++i)
        for (size_t m = 0; m < models.size(); ++m) {
          Loaded& l = models[(m + t) % models.size()];
          const int b = (i + t) % 2;
          const std::vector<float> y = run_once(*l.ex, l.x[b], b + 1);
          CHECK(y.size() == l.want[b].size() && std::memcmp(y.data(), l.want[b].data(), y.size() * sizeof(float)) == 0,
                "%s batch %d: concurrent run differs from the single-threaded one", l.name.c_str(), b + 1);
          runs++;
        }
    });
  threads.emplace_back([&] {  // resizes every executor's pool while they run
    for (int i = 0; !stop.load(); ++i) {
      models[i % models.size()].ex->set_num_threads(1 + i % 3);
      std::this_thread::yield();
    }
  });
  threads.emplace_back([&] {  // reads what the Python properties read, unlocked
    while (!stop.load())
      for (Loaded& l : models) {
        const int n = l.ex->num_threads();
        CHECK(n >= 1 && n <= 3, "%s: num_threads() read %d", l.name.c_str(), n);
        CHECK(l.ex->planned_bytes(1) > 0, "%s: no plan", l.name.c_str());
      }
  });
  for (int t = 0; t < 3; ++t) threads[t].join();
  stop = true;
  for (size_t t = 3; t < threads.size(); ++t) threads[t].join();
  CHECK(runs.load() == static_cast<long>(3 * 12 * models.size()), "runs: %ld", runs.load());
}

// Kernels of different layers sharing one pool from several threads (each with its own
// workspace), while another thread resizes the pool.
void kernels_sharing_a_pool() {
  ThreadPool shared(2), one(1);
  std::mt19937 rng(3);
  ConvGeometry g;
  g.in_channels = 24;
  g.out_channels = 40;
  g.kernel_h = g.kernel_w = 3;
  g.pad_h = g.pad_w = 1;
  const int n = 1, h = 24, w = 20;
  const auto wf = hbn_test::random_floats(static_cast<size_t>(40 * 24 * 9), rng);
  const auto x = hbn_test::random_floats(static_cast<size_t>(n * h * w * 24), rng);
  const Conv2dF32 conv(g, wf.data());
  const WBConv2d wconv = WBConv2d::from_float(g, wf.data());
  const BConv2d bconv = BConv2d::from_float(g, wf.data());
  std::vector<word_t> xb(static_cast<size_t>(n * h * w));
  for (size_t p = 0; p < xb.size(); ++p)
    for (int c = 0; c < 24; ++c) xb[p] |= word_t{x[p * 24 + c] < 0} << c;
  const size_t m = static_cast<size_t>(n) * h * w * 40;
  const OutputTransform t;
  auto run_kind = [&](int kind, ThreadPool& pool, std::vector<float>& y) {
    std::vector<unsigned char> ws;
    if (kind == 0) {
      ws.resize(conv.workspace_bytes(n, h, w));
      conv.run(x.data(), n, h, w, t, y.data(), ws.data(), pool);
    } else if (kind == 1) {
      ws.resize(wconv.workspace_bytes(n, h, w));
      wconv.run(x.data(), n, h, w, t, y.data(), ws.data(), pool);
    } else {
      ws.resize(bconv.workspace_bytes(n, h, w));
      bconv.run(xb.data(), n, h, w, t, y.data(), ws.data(), pool);
    }
  };
  std::vector<float> want[3];
  for (int k = 0; k < 3; ++k) {
    want[k].resize(m);
    run_kind(k, one, want[k]);
  }
  // More threads than the GEMM has per-thread scratch slots: the extra threads must stay out
  // of its jobs (they used to index past the workspace).
  {
    ThreadPool wide(sgemm_detail::gemm_scratch_slots() + 3);
    std::vector<float> y(m);
    for (int rep = 0; rep < 20; ++rep)  // repeated: which threads claim chunks varies
      for (int k = 0; k < 2; ++k) {
        run_kind(k, wide, y);
        CHECK(std::memcmp(y.data(), want[k].data(), m * sizeof(float)) == 0, "kernel %d on %d threads differs", k,
              wide.num_threads());
      }
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int k = 0; k < 3; ++k)
    threads.emplace_back([&, k] {
      std::vector<float> y(m);
      for (int i = 0; i < 40; ++i) {
        run_kind(k, shared, y);
        CHECK(std::memcmp(y.data(), want[k].data(), m * sizeof(float)) == 0, "kernel %d on a shared pool differs", k);
      }
    });
  threads.emplace_back([&] {
    for (int i = 0; !stop.load(); ++i) {
      shared.set_num_threads(1 + i % 4);
      std::this_thread::yield();
    }
  });
  for (int k = 0; k < 3; ++k) threads[k].join();
  stop = true;
  threads.back().join();
}

}  // namespace

int main() {
  std::vector<Loaded> models = load_corpus();
  CHECK(models.size() >= 10, "only %zu corpus models found in %s", models.size(), HBN_CORPUS_DIR);
  executors_under_concurrent_calls(models);
  kernels_sharing_a_pool();
  return hbn_test::finish("test_stress");
}

// hbn.hpp (C++ RAII layer) against the static library: errors become hbn::Error with the status,
// models move, and the thread-safety the C header documents holds (one model shared by threads
// serializes its runs; load errors are per thread). argv[1] is csrc/tests/data.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "hbn/hbn.hpp"

namespace {

int failures = 0;

#define CHECK(cond)                                                                     \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);     \
      ++failures;                                                                       \
    }                                                                                   \
  } while (0)

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

std::vector<float> read_floats(const std::string& path) {
  const std::vector<char> b = read_bytes(path);
  std::vector<float> v(b.size() / sizeof(float));
  std::copy(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(v.size() * sizeof(float)),
            reinterpret_cast<char*>(v.data()));
  return v;
}

bool close(const std::vector<float>& a, const std::vector<float>& b, double tol) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!(std::fabs(a[i] - b[i]) <= tol * (1 + std::fabs(b[i])))) return false;
  return true;
}

hbn_status status_of(void (*f)(const std::string&), const std::string& arg) {
  try {
    f(arg);
  } catch (const hbn::Error& e) {
    return e.status();
  }
  return HBN_OK;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: test_capi_cpp DATA_DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  const std::vector<float> x = read_floats(dir + "/tiny_input.raw");
  const std::vector<float> ref = read_floats(dir + "/tiny_ref.raw");

  hbn::Model m = hbn::Model::load_file(dir + "/tiny.hbn");
  CHECK((m.input_shape() == std::vector<int64_t>{3, 16, 16}));
  CHECK((m.output_shape(4) == std::vector<int64_t>{4, 10}));
  CHECK(m.ops().size() == 10 && m.ops()[0].kind == "fprec");
  CHECK(m.metadata_json().find("\"class_names\"") != std::string::npos);
  CHECK(close(m.run(x, 2), ref, 1e-4));

  // Errors carry their status and message.
  CHECK(status_of([](const std::string& p) { hbn::Model::load_file(p); }, dir + "/missing.hbn") == HBN_ERROR_IO);
  CHECK(status_of([](const std::string& p) { hbn::Model::load_file(p); }, dir) == HBN_ERROR_FORMAT);
  try {
    m.run(std::vector<float>(5), 2);
    CHECK(false);
  } catch (const hbn::Error& e) {
    CHECK(e.status() == HBN_ERROR_INVALID_ARGUMENT);
    CHECK(std::string(e.what()).find("input_count") != std::string::npos);
  }

  // Moves transfer ownership; the moved-from model is empty and safe to destroy.
  hbn::Model moved = std::move(m);
  CHECK(m.get() == nullptr && moved.get() != nullptr);
  CHECK(close(moved.run(x, 2), ref, 1e-4));

  // A borrowed buffer (kept alive here) gives the same answer.
  const std::vector<char> bytes = read_bytes(dir + "/tiny.hbn");
  hbn::Model borrowed = hbn::Model::load_buffer(bytes.data(), bytes.size());
  CHECK(close(borrowed.run(x, 2), ref, 1e-4));

  // One model shared by four threads (runs serialized) and a model per thread: all agree.
  std::vector<std::vector<float>> shared(4), own(4);
  std::vector<std::string> load_errors(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < 5; ++r) shared[t] = moved.run(x, 2);
      hbn::Model mine = hbn::Model::load_file(dir + "/tiny.hbn");
      mine.set_num_threads(1 + t % 2);
      own[t] = mine.run(x, 2);
      // A failed load's message is this thread's, whatever the others do meanwhile.
      const std::string bad = dir + "/nothing" + std::to_string(t) + ".hbn";
      hbn_model* p = nullptr;
      if (hbn_model_load_file(bad.c_str(), &p) != HBN_OK) load_errors[t] = hbn_last_error();
    });
  // Thread counts set while other threads run and read them: every read sees a count that was set.
  threads.emplace_back([&] {
    for (int r = 0; r < 20; ++r) moved.set_num_threads(1 + r % 3);
  });
  threads.emplace_back([&] {
    for (int r = 0; r < 200; ++r) {
      const int n = moved.num_threads();
      CHECK(n >= 1 && n <= 3);
    }
  });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) {
    CHECK(close(shared[t], ref, 1e-4));
    CHECK(close(own[t], ref, 1e-4));
    CHECK(load_errors[t].find("nothing" + std::to_string(t) + ".hbn") != std::string::npos);
  }

  if (failures) {
    std::fprintf(stderr, "test_capi_cpp: %d failure(s)\n", failures);
    return 1;
  }
  std::printf("test_capi_cpp: all checks passed\n");
  return 0;
}

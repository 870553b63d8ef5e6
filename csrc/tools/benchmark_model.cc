// hbn_benchmark_model: loads a .hbn through the C API (nothing else), runs it and prints median /
// min latency, per-op times (--profile) and an output checksum; optionally the memory a load
// costs (--report-memory). Usage: hbn_benchmark_model --help.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "hbn/hbn.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace {

const char kUsage[] =
    "usage: hbn_benchmark_model --model m.hbn [options]\n"
    "  --threads N          worker threads (default 1)\n"
    "  --runs R             timed runs (default 10; 0 = load only)\n"
    "  --warmup W           untimed runs first (default 2)\n"
    "  --batch B            batch size (default 1)\n"
    "  --input f.raw        float32 input, batch*C*H*W values (default: seeded values in [-1, 1))\n"
    "  --nhwc               the input file is NHWC (default NCHW)\n"
    "  --u8                 uint8 pixels (hbn_model_run_u8; a model exported with input_norm);\n"
    "                       --input is then batch*C*H*W bytes (default: seeded pixels)\n"
    "  --output f.raw       write the output (float32, contiguous) to f.raw\n"
    "  --compare f.raw      compare the output with f.raw; exit 1 beyond --tolerance\n"
    "  --tolerance T        max |a - b| / (1 + |b|) for --compare (default 1e-4)\n"
    "  --profile            per-op times (median over the runs)\n"
    "  --report-memory      resident memory and time of the load (Linux /proc/self/status)\n"
    "  --load mmap|read     mmap the file (default) or read it into memory and load the buffer\n"
    "  --preload            with --report-memory: load and free the model once before measuring, so\n"
    "                       one-time library costs (kernel tables, allocator arenas) are left out;\n"
    "                       prints what that first load and free left resident (a lower bound: the\n"
    "                       next load reuses heap pages the freed model touched)\n"
    "  --load-twice         with --report-memory: load the model a second time in this process and\n"
    "                       report what that adds (the mapped pages are shared)\n"
    "  --hold-ms MS         sleep MS ms before exiting, after printing 'holding' (to measure\n"
    "                       another process loading the same file meanwhile)\n";

struct Options {
  std::string model, input, output, compare, load = "mmap";
  int threads = 1, runs = 10, warmup = 2, hold_ms = 0;
  int64_t batch = 1;
  bool nhwc = false, profile = false, report_memory = false, u8 = false, load_twice = false,
       preload = false;
  double tolerance = 1e-4;
};

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "hbn_benchmark_model: %s\n", msg.c_str());
  std::exit(2);
}

long parse_int(const char* flag, const char* v, long lo) {
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (!*v || *end || x < lo) die(std::string(flag) + " needs an integer >= " + std::to_string(lo) + ", got '" + v + "'");
  return x;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--model") o.model = value();
    else if (a == "--threads") o.threads = static_cast<int>(parse_int("--threads", value(), 1));
    else if (a == "--runs") o.runs = static_cast<int>(parse_int("--runs", value(), 0));
    else if (a == "--warmup") o.warmup = static_cast<int>(parse_int("--warmup", value(), 0));
    else if (a == "--batch") o.batch = parse_int("--batch", value(), 1);
    else if (a == "--input") o.input = value();
    else if (a == "--output") o.output = value();
    else if (a == "--compare") o.compare = value();
    else if (a == "--tolerance") o.tolerance = std::atof(value());
    else if (a == "--nhwc") o.nhwc = true;
    else if (a == "--u8") o.u8 = true;
    else if (a == "--profile") o.profile = true;
    else if (a == "--report-memory") o.report_memory = true;
    else if (a == "--load-twice") o.load_twice = true;
    else if (a == "--preload") o.preload = true;
    else if (a == "--hold-ms") o.hold_ms = static_cast<int>(parse_int("--hold-ms", value(), 0));
    else if (a == "--load") {
      o.load = value();
      if (o.load != "mmap" && o.load != "read") die("--load is mmap or read");
    } else die("unknown argument " + a + "\n" + kUsage);
  }
  if (o.model.empty()) die(std::string("--model is required\n") + kUsage);
  if (o.u8 && o.profile) die("--profile times float input: drop --u8 (the pixels' run differs only in the input conversion)");
  return o;
}

std::vector<char> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) die("cannot open " + path);
  const std::streamoff n = f.tellg();
  if (n < 0) die("cannot read " + path);
  std::vector<char> buf(static_cast<size_t>(n));
  f.seekg(0);
  if (n > 0 && !f.read(buf.data(), n)) die("cannot read " + path);
  return buf;
}

std::vector<float> read_floats(const std::string& path, size_t count) {
  const std::vector<char> b = read_file(path);
  if (b.size() != count * sizeof(float))
    die(path + " holds " + std::to_string(b.size()) + " bytes, expected " + std::to_string(count) +
        " float32 values (" + std::to_string(count * sizeof(float)) + " bytes)");
  std::vector<float> v(count);
  std::memcpy(v.data(), b.data(), b.size());
  return v;
}

// kB of a field of /proc/self/status ("VmRSS", "VmHWM", "RssAnon", "RssFile"); -1 if absent.
long status_kb(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(field);
  while (std::getline(f, line))
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') return std::atol(line.c_str() + n + 1);
  return -1;
}

struct Memory {
  long rss, hwm, anon, file;
};

struct Mapped {
  long rss = 0, pss = 0;  // kB
};

// kB of the model file's mapping(s) resident in this process (/proc/self/smaps), so the model's
// own resident memory can be told apart from code pages the first load faults in; and their
// proportional share (Pss: a page mapped by k processes counts 1/k).
Mapped mapped_file(const std::string& path) {
  char* real = ::realpath(path.c_str(), nullptr);
  if (!real) return {};
  const std::string target = real;
  std::free(real);
  std::ifstream f("/proc/self/smaps");
  std::string line;
  bool inside = false;
  Mapped m;
  while (std::getline(f, line)) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') != std::string::npos &&
        line.find(':') > line.find(' ')) {
      // a mapping header: "start-end perms offset dev inode   pathname"
      inside = line.size() >= target.size() && line.compare(line.size() - target.size(), target.size(), target) == 0;
    } else if (inside && line.compare(0, 4, "Rss:") == 0) {
      m.rss += std::atol(line.c_str() + 4);
    } else if (inside && line.compare(0, 4, "Pss:") == 0) {
      m.pss += std::atol(line.c_str() + 4);
    }
  }
  return m;
}

Memory memory_now() { return {status_kb("VmRSS"), status_kb("VmHWM"), status_kb("RssAnon"), status_kb("RssFile")}; }

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

void check(hbn_status s, const hbn_model* m, const char* what) {
  if (s == HBN_OK) return;
  std::fprintf(stderr, "hbn_benchmark_model: %s failed: %s: %s\n", what, hbn_status_string(s),
               m ? hbn_model_last_error(m) : hbn_last_error());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);

  long baseline_kb = -1;  // --preload: anonymous memory the first load and free left behind
  if (o.preload) {
    const long anon0 = status_kb("RssAnon");
    hbn_model* first = nullptr;
    check(hbn_model_load_file(o.model.c_str(), &first), nullptr, "loading the model");
    hbn_model_free(first);
#ifdef __GLIBC__
    malloc_trim(0);  // else the next load reuses the freed heap and shows no growth at all
#endif
    baseline_kb = status_kb("RssAnon") - anon0;
  }
  // Peak resident memory is reset first (Linux >= 4.0) so VmHWM afterwards is the load's peak.
  if (o.report_memory) {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
  }
  const Memory before = memory_now();
  const auto t0 = std::chrono::steady_clock::now();
  hbn_model* model = nullptr;
  std::vector<char> owned;  // --load read: the buffer the model borrows
  if (o.load == "read") {
    owned = read_file(o.model);
    check(hbn_model_load_buffer(owned.data(), owned.size(), &model), nullptr, "loading the model");
  } else {
    check(hbn_model_load_file(o.model.c_str(), &model), nullptr, "loading the model");
  }
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const Memory after = memory_now();
  check(hbn_model_set_num_threads(model, o.threads), model, "setting threads");

  int64_t c = 0, h = 0, w = 0, dims[4];
  int ndim = 0;
  size_t in_n = 0, out_n = 0;
  check(hbn_model_input_shape(model, &c, &h, &w), model, "input shape");
  check(hbn_model_output_shape(model, o.batch, dims, &ndim), model, "output shape");
  check(hbn_model_input_count(model, o.batch, &in_n), model, "input count");
  check(hbn_model_output_count(model, o.batch, &out_n), model, "output count");
  const int ops = hbn_model_op_count(model);
  std::printf("model: %s (format v%u, %d ops, %zu parameter bytes)\n", o.model.c_str(),
              hbn_model_format_version(model), ops, hbn_model_param_bytes(model));
  std::printf("input: %lld x %lld x %lld x %lld (%s), output:", static_cast<long long>(o.batch),
              static_cast<long long>(c), static_cast<long long>(h), static_cast<long long>(w),
              o.nhwc ? "NHWC" : "NCHW");
  for (int d = 0; d < ndim; ++d) std::printf("%s%lld", d ? " x " : " ", static_cast<long long>(dims[d]));
  std::printf(", threads: %d\n", hbn_model_num_threads(model));

  if (o.report_memory) {
    std::ifstream f(o.model, std::ios::binary | std::ios::ate);
    const double file_mb = static_cast<double>(f.tellg()) / 1048576.0;
    auto mb = [](long kb) { return static_cast<double>(kb) / 1024.0; };
    // The model's share: heap growth plus its mapped file pages. The rest of the growth (code
    // pages a first load faults in) is reported apart and left out of the model's peak too.
    const Mapped mf = o.load == "mmap" ? mapped_file(o.model) : Mapped{};
    const long mapped = mf.rss;
    const long model_kb = (after.anon - before.anon) + mapped;
    const long other_kb = (after.rss - before.rss) - model_kb;
    const long peak_kb = (after.hwm - before.rss) - other_kb;
    std::printf("load (%s): %.2f ms, file %.2f MB\n", o.load.c_str(), load_ms, file_mb);
    std::printf("memory: model resident +%.2f MB (anonymous +%.2f, mapped file %.2f), model peak +%.2f MB, "
                "other +%.2f MB\n", mb(model_kb), mb(after.anon - before.anon), mb(mapped), mb(peak_kb), mb(other_kb));
    std::printf("memory/file: resident %.3f, anonymous %.3f, peak %.3f\n", mb(model_kb) / file_mb,
                mb(after.anon - before.anon) / file_mb, mb(peak_kb) / file_mb);
    if (baseline_kb >= 0)
      // Library one-time state plus heap pages the freed model's allocations left resident
      // (partly reused by this load, so the figures above understate a fresh process's).
      std::printf("preload: +%.2f MB anonymous kept after the first load and free (%.3f of the file)\n",
                  mb(baseline_kb), mb(baseline_kb) / file_mb);
    std::printf("in place: %.2f MB of the file read by run() (mapped file Pss %.2f MB)\n",
                static_cast<double>(hbn_model_in_place_bytes(model)) / 1048576.0, mb(mf.pss));
    if (o.load_twice) {
      const Memory b2 = memory_now();
      hbn_model* again = nullptr;
      if (o.load == "read") check(hbn_model_load_buffer(owned.data(), owned.size(), &again), nullptr, "loading again");
      else check(hbn_model_load_file(o.model.c_str(), &again), nullptr, "loading again");
      const Memory a2 = memory_now();
      const Mapped mf2 = o.load == "mmap" ? mapped_file(o.model) : Mapped{};
      std::printf("second load: anonymous +%.2f MB, mapped file resident %.2f MB (both mappings), Pss %.2f MB\n",
                  mb(a2.anon - b2.anon), mb(mf2.rss), mb(mf2.pss));
      std::printf("second load/file: anonymous %.3f\n", mb(a2.anon - b2.anon) / file_mb);
      hbn_model_free(again);
    }
  }
  if (o.runs == 0) {
    if (o.hold_ms > 0) {
      std::printf("holding\n");
      std::fflush(stdout);
      std::this_thread::sleep_for(std::chrono::milliseconds(o.hold_ms));
    }
    hbn_model_free(model);
    return 0;
  }

  if (o.u8 && !hbn_model_takes_pixels(model))
    die("--u8: " + o.model + " takes float input only (export it with input_norm=(mean, std))");
  std::vector<uint8_t> pixels;
  if (o.u8) {
    pixels.resize(in_n);
    if (!o.input.empty()) {
      std::FILE* f = std::fopen(o.input.c_str(), "rb");
      if (!f) die("cannot open " + o.input);
      const size_t got = std::fread(pixels.data(), 1, in_n, f);
      const bool extra = std::fgetc(f) != EOF;
      std::fclose(f);
      if (got != in_n || extra) die(o.input + " must hold exactly " + std::to_string(in_n) + " bytes");
    } else {
      uint32_t s = 12345u;
      for (uint8_t& v : pixels) {
        s = s * 1664525u + 1013904223u;
        v = static_cast<uint8_t>(s >> 24);
      }
    }
  }
  std::vector<float> input;
  if (o.u8) {
  } else if (!o.input.empty()) {
    input = read_floats(o.input, in_n);
  } else {
    input.resize(in_n);
    uint32_t s = 12345u;  // fixed LCG seed: the same input on every machine
    for (float& v : input) {
      s = s * 1664525u + 1013904223u;
      v = static_cast<float>(s >> 8) / 8388608.0f - 1.0f;
    }
  }
  const hbn_layout layout = o.nhwc ? HBN_LAYOUT_NHWC : HBN_LAYOUT_NCHW;
  std::vector<float> out(out_n);
  const auto run_once = [&]() {
    return o.u8 ? hbn_model_run_u8(model, pixels.data(), o.batch, layout, in_n, out.data(), out_n)
                : hbn_model_run(model, input.data(), o.batch, layout, in_n, out.data(), out_n);
  };
  for (int i = 0; i < o.warmup; ++i) check(run_once(), model, "warm-up run");

  std::vector<double> totals(static_cast<size_t>(o.runs));
  std::vector<double> steps;
  if (o.profile) {
    steps.resize(static_cast<size_t>(o.runs) * static_cast<size_t>(ops + 2));
    check(hbn_model_profile(model, input.data(), o.batch, layout, in_n, out.data(), out_n, o.runs,
                            steps.data(), steps.size(), totals.data()),
          model, "profile");
  } else {
    for (int r = 0; r < o.runs; ++r) {
      const auto a = std::chrono::steady_clock::now();
      check(run_once(), model, "run");
      totals[static_cast<size_t>(r)] = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
    }
  }
  std::printf("latency over %d runs: median %.3f ms, min %.3f ms\n", o.runs, median(totals) * 1e3,
              *std::min_element(totals.begin(), totals.end()) * 1e3);
  if (o.report_memory && o.load == "mmap") {
    // Weights read in place fault their pages in on first use (those validation did not touch).
    const Mapped mf = mapped_file(o.model);
    std::printf("after runs: mapped file resident %.2f MB, Pss %.2f MB\n", static_cast<double>(mf.rss) / 1024.0,
                static_cast<double>(mf.pss) / 1024.0);
  }

  if (o.profile) {
    const size_t n_steps = static_cast<size_t>(ops + 2);
    auto step_median = [&](size_t k) {
      std::vector<double> v;
      for (int r = 0; r < o.runs; ++r) v.push_back(steps[static_cast<size_t>(r) * n_steps + k]);
      return median(v);
    };
    double sum = 0;
    for (size_t k = 0; k < n_steps; ++k) sum += step_median(k);
    std::printf("%-4s %-28s %-12s %10s %7s\n", "#", "op", "kind", "ms", "%");
    for (size_t k = 0; k < n_steps; ++k) {
      const char* name = k == 0 ? "(input conversion)" : k + 1 == n_steps ? "(output conversion)" : hbn_model_op_name(model, static_cast<int>(k) - 1);
      const char* kind = k == 0 || k + 1 == n_steps ? "-" : hbn_model_op_kind(model, static_cast<int>(k) - 1);
      const double t = step_median(k);
      std::printf("%-4zu %-28s %-12s %10.4f %6.1f%%\n", k, name, kind, t * 1e3, sum > 0 ? 100 * t / sum : 0.0);
    }
  }

  double sum = 0, abs_sum = 0;
  for (float v : out) sum += v, abs_sum += std::fabs(v);
  size_t best = 0;
  const size_t per = out_n / static_cast<size_t>(o.batch);
  for (size_t i = 1; i < per; ++i)
    if (out[i] > out[best]) best = i;
  std::printf("output checksum: sum %.6g, sum|x| %.6g, argmax of image 0: %zu\n", sum, abs_sum, best);

  int rc = 0;
  if (!o.output.empty()) {
    std::ofstream f(o.output, std::ios::binary);
    if (!f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size() * sizeof(float))))
      die("cannot write " + o.output);
  }
  if (!o.compare.empty()) {
    const std::vector<float> ref = read_floats(o.compare, out_n);
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < out_n; ++i) {
      const double e = std::fabs(static_cast<double>(out[i]) - ref[i]) / (1.0 + std::fabs(static_cast<double>(ref[i])));
      if (!(e <= worst)) worst = e, at = i;
    }
    const bool ok = worst <= o.tolerance;
    std::printf("compare with %s: max relative error %.3g at %zu (tolerance %.3g): %s\n", o.compare.c_str(),
                worst, at, o.tolerance, ok ? "OK" : "MISMATCH");
    if (!ok) rc = 1;
  }
  if (o.hold_ms > 0) {
    std::printf("holding\n");
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::milliseconds(o.hold_ms));
  }
  hbn_model_free(model);
  return rc;
}

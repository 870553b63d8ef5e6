// Replays files through the fuzz target without libFuzzer, so every normal and sanitizer test
// build runs the seed corpus and the crash regressions (ctest fuzz_replay):
//   fuzz_replay FILE_OR_DIR...
// Exits non-zero when an argument cannot be read; a finding aborts inside the target.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" long hbn_fuzz_loaded, hbn_fuzz_ran;

namespace fs = std::filesystem;

static bool replay(const fs::path& p, int* count) {
  std::ifstream f(p, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "fuzz_replay: cannot read %s\n", p.string().c_str());
    return false;
  }
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  ++*count;
  return true;
}

int main(int argc, char** argv) {
  int count = 0;
  bool ok = true;
  for (int i = 1; i < argc; ++i) {
    const fs::path arg(argv[i]);
    if (fs::is_directory(arg)) {
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(arg))
        if (e.is_regular_file() && e.path().filename().string()[0] != '.' && e.path().extension() != ".md")
          files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) ok &= replay(f, &count);
    } else {
      ok &= replay(arg, &count);
    }
  }
  std::printf("fuzz_replay: %d file(s) replayed, %ld loaded, %ld ran\n", count, hbn_fuzz_loaded, hbn_fuzz_ran);
  return ok && count > 0 ? 0 : 1;
}

// Every compiled pack_rows path against pack_rows_reference, bit-exact.
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "bitpack/bitpack.h"
#include "hbn/isa.h"
#include "tests/check.h"

using namespace hbn;

using hbn_test::g_failures;

static void check(bool ok, const char* what, const std::string& isa, int channels, int mode) {
  if (!ok) {
    std::printf("FAIL %s isa=%s channels=%d mode=%d\n", what, isa.c_str(), channels, mode);
    ++g_failures;
  }
}

int main() {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const float inf = std::numeric_limits<float>::infinity();
  ThreadPool pool2(2);
  // 1100: more than one 1024-channel block of the AVX-512 path's prepared thresholds.
  const int channel_list[] = {1, 3, 8, 15, 16, 17, 63, 64, 65, 127, 128, 200, 257, 1100};
  for (int channels : channel_list) {
    const int64_t rows = 37, stride = channels + 3, words = words_for(channels);
    std::vector<float> x(static_cast<size_t>(rows * stride));
    for (auto& v : x) v = nd(rng);
    // Exact zeros of both signs and a NaN: sign(0) = +1, NaN compares false.
    x[0] = 0.0f;
    if (channels > 1) x[1] = -0.0f;
    if (channels > 2) x[2] = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> thr(channels);
    std::vector<uint8_t> flip(channels);
    for (int c = 0; c < channels; ++c) {
      thr[c] = nd(rng) * 0.5f;
      flip[c] = static_cast<uint8_t>(rng() % 3 == 0 ? (rng() % 200 + 1) : 0);  // any nonzero flips
    }
    if (channels > 4) thr[3] = inf, thr[4] = -inf;
    if (channels > 6) thr[5] = inf, thr[6] = -inf, flip[5] = 1, flip[6] = 1;
    // Threshold equal to the input: strict comparisons give +1 either way.
    if (channels > 7) thr[7] = x[stride + 7];
    for (int mode = 0; mode < 3; ++mode) {
      const float* t = mode >= 1 ? thr.data() : nullptr;
      const uint8_t* f = mode == 2 ? flip.data() : nullptr;
      std::vector<word_t> ref(static_cast<size_t>(rows * words), 0xdeadbeef);
      pack_rows_reference(x.data(), rows, channels, stride, ref.data(), t, f);
      // Spot-check the reference itself against the documented rule.
      for (int64_t r = 0; r < rows; ++r)
        for (int c = 0; c < channels; ++c) {
          const float v = x[r * stride + c];
          const bool want = !t ? v < 0.0f : (f && f[c] ? v > t[c] : v < t[c]);
          const bool got = (ref[r * words + c / 64] >> (c % 64)) & 1;
          check(want == got, "reference rule", "reference", channels, mode);
        }
      for (int64_t r = 0; r < rows; ++r)
        if (channels % 64) check((ref[r * words + words - 1] >> (channels % 64)) == 0, "tail", "reference", channels, mode);
      for (const std::string& isa : hbn_test::supported_paths()) {
        set_isa(isa);
        for (ThreadPool* pool : {static_cast<ThreadPool*>(nullptr), &pool2}) {
          std::vector<word_t> out(static_cast<size_t>(rows * words), 0x5555);
          pack_rows(x.data(), rows, channels, stride, out.data(), t, f, pool);
          check(out == ref, "pack_rows vs reference", isa, channels, mode);
        }
      }
      reset_isa();
    }
  }
  // Many rows so the pool really splits the work.
  {
    const int channels = 96;
    const int64_t rows = 2000;
    std::vector<float> x(static_cast<size_t>(rows * channels));
    for (auto& v : x) v = nd(rng);
    std::vector<word_t> ref(static_cast<size_t>(rows * 2)), out(ref.size());
    pack_rows_reference(x.data(), rows, channels, channels, ref.data());
    for (const std::string& isa : hbn_test::supported_paths()) {
      set_isa(isa);
      pack_rows(x.data(), rows, channels, channels, out.data(), nullptr, nullptr, &pool2);
      check(out == ref, "pack_rows threaded", isa, channels, 0);
    }
    reset_isa();
  }
  return hbn_test::finish("test_bitpack");
}

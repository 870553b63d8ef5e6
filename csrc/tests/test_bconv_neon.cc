// Edge shapes of the NEON binary-conv kernel (bconv_neon.cc) against bconv2d_reference, run on
// every compiled path (the shapes are meaningful for the others too; under qemu that is scalar
// and neon): receptive fields past the 16-bit accumulation run of kChunk = 4095 words (folded
// pieces, a piece boundary inside a K segment), exactly 4095 words of all-disagreeing bits (the
// largest count a 16-bit lane holds), weights too large for one multi-block call per panel,
// channel counts ending inside a 16-channel half or a 4-channel quad, single-row panels, strides,
// and the K-in-lanes tile's segment shapes (bconv_klanes_neon.cc).
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "bconv/bconv.h"
#include "hbn/isa.h"
#include "hbn/threadpool.h"
#include "tests/check.h"

using namespace hbn;

namespace {

struct Shape {
  int c, oc, k, pad, n, h, w;
  // fill 0: random bits; 1: activations all -1, weights all +1 (every bit disagrees)
  int fill;
  int stride = 1;
};

std::vector<word_t> make_bits(std::mt19937_64& rng, int64_t groups, int channels, bool ones) {
  const int64_t words = words_for(channels);
  std::vector<word_t> v(static_cast<size_t>(groups * words));
  const word_t tail = channels % 64 ? (word_t{1} << (channels % 64)) - 1 : ~word_t{0};
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t i = 0; i < words; ++i)
      v[g * words + i] = (ones ? ~word_t{0} : rng()) & (i == words - 1 ? tail : ~word_t{0});
  return v;
}

void check_shape(const Shape& s, std::mt19937_64& rng, ThreadPool& pool1, ThreadPool& pool2) {
  ConvGeometry g;
  g.in_channels = s.c;
  g.out_channels = s.oc;
  g.kernel_h = g.kernel_w = s.k;
  g.pad_h = g.pad_w = s.pad;
  g.stride_h = g.stride_w = s.stride;
  const int OH = g.out_h(s.h), OW = g.out_w(s.w);
  const int64_t M = static_cast<int64_t>(s.n) * OH * OW, OCW = words_for(s.oc);
  const auto x = make_bits(rng, static_cast<int64_t>(s.n) * s.h * s.w, s.c, s.fill == 1);
  auto wt = make_bits(rng, static_cast<int64_t>(s.oc) * s.k * s.k, s.c, false);
  if (s.fill == 1) std::fill(wt.begin(), wt.end(), word_t{0});
  std::vector<int32_t> ref(static_cast<size_t>(M * s.oc));
  bconv2d_reference(g, x.data(), s.n, s.h, s.w, wt.data(), ref.data());

  const hbn_test::RandomTransforms tr(s.oc, rng, 0.01f, 1.0f, 0.5f);
  const OutputTransform &plain = tr.plain, &full = tr.full, &bits = tr.bits;

  BConv2d conv(g, wt.data());
  std::vector<unsigned char> ws(conv.workspace_bytes(s.n, s.h, s.w));
  for (const std::string& path : hbn_test::supported_paths()) {
    set_isa(path);
    for (ThreadPool* pool : {&pool1, &pool2}) {
      const int th = pool->num_threads();
      std::vector<float> out(static_cast<size_t>(M * s.oc));
      conv.run(x.data(), s.n, s.h, s.w, plain, out.data(), ws.data(), *pool);
      int64_t bad = -1;
      for (int64_t i = 0; i < M * s.oc && bad < 0; ++i)
        if (out[i] != static_cast<float>(ref[i])) bad = i;
      CHECK(bad < 0, "raw dot isa=%s C=%d OC=%d k=%d threads=%d at %lld: %g vs %d", path.c_str(), s.c, s.oc,
            s.k, th, static_cast<long long>(bad), bad < 0 ? 0.0 : out[bad], bad < 0 ? 0 : ref[bad]);
      conv.run(x.data(), s.n, s.h, s.w, full, out.data(), ws.data(), *pool);
      bad = -1;
      for (int64_t m = 0; m < M && bad < 0; ++m)
        for (int j = 0; j < s.oc; ++j)
          if (out[m * s.oc + j] != apply_transform(full, static_cast<float>(ref[m * s.oc + j]), m, j)) {
            bad = m * s.oc + j;
            break;
          }
      CHECK(bad < 0, "transform isa=%s C=%d OC=%d k=%d threads=%d at %lld", path.c_str(), s.c, s.oc, s.k, th,
            static_cast<long long>(bad));
      std::vector<word_t> ob(static_cast<size_t>(M * OCW), 0x5555);
      conv.run_bits(x.data(), s.n, s.h, s.w, bits, ob.data(), ws.data(), *pool);
      bool ok = true;
      for (int64_t m = 0; m < M && ok; ++m)
        for (int64_t wd = 0; wd < OCW && ok; ++wd) {
          word_t want = 0;
          for (int j = static_cast<int>(wd * 64); j < s.oc && j < wd * 64 + 64; ++j)
            if (threshold_bit(bits, apply_transform(bits, static_cast<float>(ref[m * s.oc + j]), m, j), j))
              want |= word_t{1} << (j % 64);
          ok = ob[m * OCW + wd] == want;
        }
      CHECK(ok, "bits isa=%s C=%d OC=%d k=%d threads=%d", path.c_str(), s.c, s.oc, s.k, th);
    }
  }
  reset_isa();
}

}  // namespace

int main() {
  std::mt19937_64 rng(777);
  ThreadPool pool1(1), pool2(2);
  const Shape shapes[] = {
      // c, oc, k, pad, n, h, w, fill
      {4095 * 64, 21, 1, 0, 3, 1, 1, 1},   // exactly one 16-bit run of all-disagreeing words
      {4096 * 64, 21, 1, 0, 3, 1, 1, 1},   // one word past it: two pieces
      {4096 * 64, 18, 1, 0, 1, 1, 1, 0},   // random bits, a single row
      {1400 * 64, 18, 3, 1, 1, 3, 3, 0},   // 3x3: segments of 4200 words, pieces split inside
      {1390 * 64 + 17, 5, 3, 1, 1, 2, 3, 0},  // channel tail bits, 5 outputs
      {512, 600, 3, 1, 1, 3, 3, 0},        // 2.7 MB of weights: one block per tile call
      {64, 23, 3, 1, 1, 5, 3, 0},          // channels end inside the second quad of a half
      {130, 47, 3, 1, 1, 3, 5, 0},         // 47 = 32 + 15: second block, partial half
      {100, 2, 1, 0, 1, 1, 7, 0},          // 2 outputs: one quad, mostly padding lanes
      {96, 40, 3, 1, 2, 9, 7, 0, 2},       // stride 2, compact fields (96 channels x 9 taps), 2 images
      {200, 33, 5, 2, 1, 9, 9, 0, 3},      // stride 3, 5x5, padding 2, 4-word pixels with tail bits
      {64, 64, 3, 1, 1, 8, 8, 0, 2},       // one word per pixel, stride 2 (odd 3-word segments)
      // K-in-lanes tile (bconv_klanes_neon.cc): 511-step runs, one-word pieces avoided, odd
      // segments (a d-register last step), two-word fields, pixel counts not a multiple of 4.
      {1023 * 64, 9, 1, 0, 1, 1, 5, 1},    // 1023 words of all-disagreeing bits: pieces 1020 + 3
      {1022 * 64, 7, 1, 0, 1, 1, 3, 1},    // exactly two 511-step runs
      {128, 36, 1, 0, 2, 3, 3, 0},         // 1x1, two words: one step per segment
      {192, 20, 3, 1, 1, 4, 6, 0},         // 3x3 on 3-word pixels: odd 9-word segments
      {256, 70, 3, 1, 1, 5, 5, 0},         // 70 channels: a partial 4-channel group, bits across words
      {320, 12, 2, 0, 1, 4, 4, 0, 2},      // 2x2 stride 2: 10-word segments, 4 pixels
      // One-word fields (tile1w): 64 channels, 33 channels with tail bits, strided, > 16 outputs.
      {64, 40, 1, 0, 2, 3, 5, 0},
      {33, 70, 1, 0, 1, 4, 4, 0, 2},
      {64, 9, 1, 0, 1, 5, 5, 1},
  };
  for (const Shape& s : shapes) check_shape(s, rng, pool1, pool2);
  return hbn_test::finish("test_bconv_neon");
}

// aarch64 driver for the instruction-count / llvm-mca measurements (benchmarks/arm/README.md).
// It calls one piece of the engine R times on one thread so that, under qemu with the
// insncount plugin, (count with R calls - count with 1 call) / (R - 1) is the cost of one call
// with every one-time cost (process start, weight packing, model loading) cancelled out.
//
//   arm_bench layer C OC H W K STRIDE PAD MODE R   one conv layer, batch 1; MODE: float / bits
//                                                  (FullBinConv, float or bit output), fp32
//                                                  (Conv2dF32), wbin (WeightBinConv, WBConv2d),
//                                                  wbin_fma (WBConv2d kept off the LUT kernel:
//                                                  signs decoded for the FMA micro-kernels)
//   arm_bench peak {binary|fma} ITERS                    the register-resident NEON peak loops
//   arm_bench model FILE.hbn R                           a whole network, batch 1
//
// Inputs and weights are fixed pseudo-random values (the counts do not depend on them: the
// kernels have no data-dependent branches). Prints a checksum so no work can be dropped.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "bconv/bconv.h"
#include "fconv/conv_f32.h"
#include "fconv/ukernel.h"
#include "hbn/threadpool.h"
#include "hbn/types.h"
#include "peak/peak_impl.h"
#include "runtime/executor.h"
#include "wbconv/wbconv.h"

// The NEON rows of the peak tables (peak_neon.cc), called directly whatever dispatch picks.
namespace hbn {
namespace detail {
PeakLoop peak_binary_neon();
PeakLoop peak_fma_neon();
}  // namespace detail
}  // namespace hbn

using namespace hbn;

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: arm_bench layer C OC H W K STRIDE PAD {float|bits|fp32|wbin|wbin_fma} R\n"
               "       arm_bench peak {binary|fma} ITERS\n"
               "       arm_bench model FILE.hbn R\n");
  return 2;
}

int to_int(const char* s) {
  char* end = nullptr;
  const long v = std::strtol(s, &end, 10);
  if (!*s || *end || v < 0 || v > (1L << 30)) throw std::invalid_argument(std::string("bad number: ") + s);
  return static_cast<int>(v);
}

// Float-input layers (NHWC float in and out, scale + bias + ReLU): the fp32 conv and the
// WeightBin conv of the same shape, the comparison WBin kernels are judged by.
int run_float_layer(const ConvGeometry& g, int h, int w, const std::string& mode, int reps, std::mt19937_64& rng) {
  const bool wbin = mode != "fp32";
  const int C = g.in_channels, OC = g.out_channels;
  std::uniform_real_distribution<float> ud(-1.0f, 1.0f);
  std::vector<float> weights(static_cast<size_t>(OC) * C * g.kernel_h * g.kernel_w), x(static_cast<size_t>(h) * w * C);
  for (auto& v : weights) v = ud(rng);
  for (auto& v : x) v = ud(rng);
  std::vector<float> scale(OC), bias(OC);
  for (int j = 0; j < OC; ++j) {
    scale[j] = 0.5f + 0.25f * ud(rng);
    bias[j] = ud(rng);
  }
  OutputTransform t;
  t.scale = scale.data();
  t.bias = bias.data();
  t.act = Activation::relu;
  const int64_t M = static_cast<int64_t>(g.out_h(h)) * g.out_w(w);
  std::vector<float> out(static_cast<size_t>(M * OC));
  ThreadPool pool(1);
  double sum = 0;
  auto loop = [&](const auto& conv) {
    std::vector<unsigned char> ws(conv.workspace_bytes(1, h, w));
    for (int r = 0; r < reps; ++r) {
      conv.run(x.data(), 1, h, w, t, out.data(), ws.data(), pool);
      sum += out[static_cast<size_t>(r) % out.size()];
    }
  };
  if (wbin) {
    WBConv2d conv = WBConv2d::from_float(g, weights.data());
    // The strategy the automatic choice takes where no LUT kernel runs (wb_strategy.cc).
    if (mode == "wbin_fma")
      conv.set_strategy(sgemm_detail::choose_bits_strategy(sgemm_detail::active_kernels(), WBStrategy::automatic, M));
    loop(conv);
  }
  else loop(Conv2dF32(g, weights.data()));
  std::printf("layer C=%d OC=%d %dx%d k=%d s=%d p=%d %s reps=%d macs=%lld checksum=%g\n", C, OC, h, w, g.kernel_h,
              g.stride_h, g.pad_h, mode.c_str(), reps,
              static_cast<long long>(M * OC * static_cast<int64_t>(C) * g.kernel_h * g.kernel_w), sum);
  return 0;
}

int run_layer(char** argv) {
  ConvGeometry g;
  g.in_channels = to_int(argv[0]);
  g.out_channels = to_int(argv[1]);
  const int h = to_int(argv[2]), w = to_int(argv[3]);
  g.kernel_h = g.kernel_w = to_int(argv[4]);
  g.stride_h = g.stride_w = to_int(argv[5]);
  g.pad_h = g.pad_w = to_int(argv[6]);
  const std::string mode = argv[7];
  const int reps = to_int(argv[8]);
  if (mode != "float" && mode != "bits" && mode != "fp32" && mode != "wbin" && mode != "wbin_fma")
    throw std::invalid_argument("mode must be float, bits, fp32, wbin or wbin_fma");
  const int C = g.in_channels, OC = g.out_channels;
  std::mt19937_64 rng(1);
  if (mode == "fp32" || mode == "wbin" || mode == "wbin_fma") return run_float_layer(g, h, w, mode, reps, rng);
  const int64_t W = words_for(C);
  const word_t tail = C % 64 ? (word_t{1} << (C % 64)) - 1 : ~word_t{0};
  auto bits = [&](int64_t groups) {
    std::vector<word_t> v(static_cast<size_t>(groups * W) + kOverReadBytes / sizeof(word_t));
    for (int64_t i = 0; i < groups * W; ++i) v[i] = rng() & (i % W == W - 1 ? tail : ~word_t{0});
    return v;
  };
  const auto weights = bits(static_cast<int64_t>(OC) * g.kernel_h * g.kernel_w);
  const auto input = bits(static_cast<int64_t>(h) * w);
  BConv2d conv(g, weights.data());
  std::uniform_real_distribution<float> ud(-1.0f, 1.0f);
  std::vector<float> scale(OC), bias(OC), thr(OC);
  for (int j = 0; j < OC; ++j) {
    scale[j] = 0.01f + 0.1f * (ud(rng) + 1.0f);
    bias[j] = ud(rng);
    thr[j] = 0.5f * ud(rng);
  }
  // The transform a FullBinConv layer of the zoo models has: scale (alpha and BN), bias, ReLU
  // for float output; a per-channel threshold for bit output.
  OutputTransform t;
  t.scale = scale.data();
  t.bias = bias.data();
  t.act = mode == "float" ? Activation::relu : Activation::none;
  if (mode == "bits") t.out_threshold = thr.data();
  const int OH = g.out_h(h), OW = g.out_w(w);
  const int64_t M = static_cast<int64_t>(OH) * OW;
  std::vector<float> out_f(mode == "float" ? static_cast<size_t>(M * OC) : 0);
  std::vector<word_t> out_b(mode == "bits" ? static_cast<size_t>(M * words_for(OC)) : 0);
  std::vector<unsigned char> ws(conv.workspace_bytes(1, h, w));
  ThreadPool pool(1);
  double sum = 0;
  for (int r = 0; r < reps; ++r) {
    if (mode == "float") {
      conv.run(input.data(), 1, h, w, t, out_f.data(), ws.data(), pool);
      sum += out_f[static_cast<size_t>(r) % out_f.size()];
    } else {
      conv.run_bits(input.data(), 1, h, w, t, out_b.data(), ws.data(), pool);
      sum += static_cast<double>(out_b[static_cast<size_t>(r) % out_b.size()] & 0xffff);
    }
  }
  std::printf("layer C=%d OC=%d %dx%d k=%d s=%d p=%d %s reps=%d macs=%lld checksum=%g\n", C, OC, h, w,
              g.kernel_h, g.stride_h, g.pad_h, mode.c_str(), reps,
              static_cast<long long>(M * OC * static_cast<int64_t>(C) * g.kernel_h * g.kernel_w), sum);
  return 0;
}

int run_peak(char** argv) {
  const std::string which = argv[0];
  const int iters = to_int(argv[1]);
  detail::PeakLoop loop;
  if (which == "binary") loop = detail::peak_binary_neon();
  else if (which == "fma") loop = detail::peak_fma_neon();
  else throw std::invalid_argument("peak loop must be binary or fma");
  std::printf("peak %s iters=%d macs_per_iter=%g checksum=%g\n", which.c_str(), iters, loop.macs_per_iter,
              loop.fn(iters));
  return 0;
}

int run_model(char** argv) {
  std::ifstream f(argv[0], std::ios::binary);
  if (!f) throw std::runtime_error(std::string("cannot open ") + argv[0]);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const int reps = to_int(argv[1]);
  Executor ex(std::move(bytes));
  ex.set_num_threads(1);
  const ValueShape& in = ex.graph().input;
  const int64_t n = 1;
  std::mt19937 rng(2);
  std::normal_distribution<float> nd;
  std::vector<float> x(static_cast<size_t>(n * in.per_image()));
  for (auto& v : x) v = nd(rng);
  const int64_t strides[4] = {in.per_image(), in.h * in.w, in.w, 1};
  int64_t out_n = 1;
  for (int64_t d : ex.output_shape(n)) out_n *= d;
  std::vector<float> y(static_cast<size_t>(out_n));
  double sum = 0;
  for (int r = 0; r < reps; ++r) {
    ex.run(x.data(), n, strides, y.data());
    sum += y[static_cast<size_t>(r) % y.size()];
  }
  std::printf("model %s reps=%d outputs=%lld checksum=%g\n", argv[0], reps, static_cast<long long>(out_n), sum);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc >= 2 && !std::strcmp(argv[1], "layer") && argc == 11) return run_layer(argv + 2);
    if (argc >= 2 && !std::strcmp(argv[1], "peak") && argc == 4) return run_peak(argv + 2);
    if (argc >= 2 && !std::strcmp(argv[1], "model") && argc == 4) return run_model(argv + 2);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "arm_bench: %s\n", e.what());
    return 1;
  }
  return usage();
}

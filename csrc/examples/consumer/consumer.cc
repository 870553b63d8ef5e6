// The smallest useful embedding, through the C++ layer (hbn/hbn.hpp): load a model, describe it,
// run a batch of seeded inputs in NCHW and NHWC, print the top class and a checksum.
//   consumer MODEL.hbn [BATCH]
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "hbn/hbn.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: consumer MODEL.hbn [BATCH]\n");
    return 2;
  }
  const int64_t batch = argc > 2 ? std::atoll(argv[2]) : 1;
  try {
    hbn::Model model = hbn::Model::load_file(argv[1]);
    const std::vector<int64_t> in = model.input_shape();
    std::printf("hbn %s, format v%u, %zu ops, %zu parameter bytes, input %lldx%lldx%lld\n", hbn_version(),
                model.format_version(), model.ops().size(), model.param_bytes(), static_cast<long long>(in[0]),
                static_cast<long long>(in[1]), static_cast<long long>(in[2]));

    // Seeded NCHW batch, and the same pixels in NHWC.
    std::vector<float> nchw(model.input_count(batch)), nhwc(nchw.size());
    uint32_t s = 1;
    for (float& v : nchw) {
      s = s * 1664525u + 1013904223u;
      v = static_cast<float>(s >> 8) / 8388608.0f - 1.0f;
    }
    const size_t plane = static_cast<size_t>(in[1] * in[2]);
    for (size_t k = 0; k < nchw.size(); ++k) {
      const size_t n = k / (in[0] * plane), c = k / plane % in[0], p = k % plane;
      nhwc[(n * plane + p) * in[0] + c] = nchw[k];
    }
    const std::vector<float> a = model.run(nchw, batch, HBN_LAYOUT_NCHW);
    const std::vector<float> b = model.run(nhwc, batch, HBN_LAYOUT_NHWC);
    if (a != b) {
      std::fprintf(stderr, "consumer: NHWC and NCHW outputs differ\n");
      return 1;
    }
    double sum = 0;
    size_t top = 0;
    const size_t per = a.size() / static_cast<size_t>(batch);
    for (size_t i = 0; i < a.size(); ++i) sum += a[i];
    for (size_t i = 1; i < per; ++i)
      if (a[i] > a[top]) top = i;
    std::printf("batch %lld: output %zu floats, image 0 top class %zu, checksum %.6g (NCHW == NHWC)\n",
                static_cast<long long>(batch), a.size(), top, sum);
  } catch (const hbn::Error& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
  return 0;
}

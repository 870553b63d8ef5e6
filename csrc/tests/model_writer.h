// A minimal .hbn writer (docs/format.md), enough for hand-built test graphs in C++ tests.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "runtime/format.h"

namespace hbn_test {

struct Writer {
  std::vector<uint8_t> graph, table, data;
  uint32_t n_tensors = 0, n_ops = 0;
  template <typename T>
  static void put(std::vector<uint8_t>& b, T v) {
    const uint8_t* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
  }
  static void pad(std::vector<uint8_t>& b, size_t a) {
    while (b.size() % a) b.push_back(0);
  }
  uint32_t tensor(const std::vector<float>& v, std::vector<int64_t> dims) {
    return raw_tensor(1, v.data(), v.size() * 4, dims);
  }
  uint32_t bits_tensor(const std::vector<uint64_t>& v, std::vector<int64_t> dims) {
    return raw_tensor(2, v.data(), v.size() * 8, dims);
  }
  uint32_t raw_tensor(uint32_t dtype, const void* src, size_t nbytes, std::vector<int64_t> dims) {
    pad(data, 64);
    put<uint32_t>(table, dtype);
    put<uint32_t>(table, static_cast<uint32_t>(dims.size()));
    for (int i = 0; i < 4; ++i) put<int64_t>(table, i < static_cast<int>(dims.size()) ? dims[i] : 0);
    put<uint64_t>(table, data.size());
    put<uint64_t>(table, nbytes);
    put<uint64_t>(table, 0);
    const uint8_t* p = static_cast<const uint8_t*>(src);
    data.insert(data.end(), p, p + nbytes);
    return n_tensors++;
  }
  void op(uint32_t type, const std::string& name, std::vector<uint32_t> inputs,
          std::vector<uint32_t> tensors, std::vector<std::pair<uint32_t, int64_t>> attrs) {
    put<uint32_t>(graph, type);
    put<uint32_t>(graph, static_cast<uint32_t>(name.size()));
    graph.insert(graph.end(), name.begin(), name.end());
    pad(graph, 4);
    put<uint32_t>(graph, static_cast<uint32_t>(inputs.size()));
    for (auto v : inputs) put<uint32_t>(graph, v);
    put<uint32_t>(graph, static_cast<uint32_t>(tensors.size()));
    for (auto t : tensors) put<uint32_t>(graph, t);
    put<uint32_t>(graph, static_cast<uint32_t>(attrs.size()));
    for (auto& [k, v] : attrs) {
      put<uint32_t>(graph, k);
      put<uint32_t>(graph, 1);
      put<int64_t>(graph, v);
    }
    ++n_ops;
  }
  std::vector<uint8_t> finish(uint32_t c, uint32_t h, uint32_t w) {
    std::vector<uint8_t> g;
    put<uint32_t>(g, n_ops);
    put<uint32_t>(g, n_ops);  // output = last op
    put<uint32_t>(g, c);
    put<uint32_t>(g, h);
    put<uint32_t>(g, w);
    for (int i = 0; i < 3; ++i) put<uint32_t>(g, 0);
    g.insert(g.end(), graph.begin(), graph.end());
    const std::string meta = "{}";
    auto align = [](uint64_t v) { return (v + 63) / 64 * 64; };
    const uint64_t meta_off = 128, graph_off = align(meta_off + meta.size());
    const uint64_t table_off = align(graph_off + g.size()), data_off = align(table_off + table.size());
    pad(data, 64);
    const uint64_t size = data_off + data.size();
    std::vector<uint8_t> f(size, 0);
    std::memcpy(f.data(), "HBNMODEL", 8);
    const uint32_t hdr32[2] = {hbn::kFormatVersion, 128};
    std::memcpy(f.data() + 8, hdr32, 8);
    const uint64_t hdr[9] = {size, meta_off, meta.size(), graph_off, g.size(), table_off,
                             n_tensors, data_off, data.size()};
    std::memcpy(f.data() + 16, hdr, sizeof(hdr));
    std::memcpy(f.data() + meta_off, meta.data(), meta.size());
    std::memcpy(f.data() + graph_off, g.data(), g.size());
    std::memcpy(f.data() + table_off, table.data(), table.size());
    std::memcpy(f.data() + data_off, data.data(), data.size());
    return f;
  }
};

}  // namespace hbn_test

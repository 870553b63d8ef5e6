#include "runtime/memory_plan.h"

#include <algorithm>
#include <map>
#include <stdexcept>

namespace hbn {
namespace {

size_t checked_add(size_t a, size_t b) {
  size_t r;
  if (__builtin_add_overflow(a, b, &r)) throw std::overflow_error("arena size overflows size_t");
  return r;
}

}  // namespace

MemoryPlan plan_memory(const std::vector<BufferReq>& buffers, size_t scratch_bytes, size_t alignment) {
  MemoryPlan plan;
  plan.offset.assign(buffers.size(), 0);
  int first = 0, last = -1;
  for (const BufferReq& b : buffers) {
    first = std::min(first, b.def);
    last = std::max({last, b.def, b.last_use});
  }
  std::vector<std::vector<size_t>> defs(static_cast<size_t>(last - first + 1)), frees(defs.size());
  for (size_t i = 0; i < buffers.size(); ++i) {
    defs[static_cast<size_t>(buffers[i].def - first)].push_back(i);
    frees[static_cast<size_t>(std::max(buffers[i].def, buffers[i].last_use) - first)].push_back(i);
  }
  std::map<size_t, size_t> live;  // offset -> size
  size_t top = 0;
  for (size_t step = 0; step < defs.size(); ++step) {
    for (size_t id : defs[step]) {
      const size_t size = buffers[id].bytes;
      if (size == 0) continue;  // takes no room (offset 0, never dereferenced)
      size_t off = 0;
      for (const auto& [o, s] : live) {
        if (o >= checked_add(off, size)) break;
        off = std::max(off, o + s);
      }
      live[off] = size;
      top = std::max(top, checked_add(off, size));
      plan.offset[id] = off;
    }
    for (size_t id : frees[step])
      if (buffers[id].bytes > 0) live.erase(plan.offset[id]);
  }
  plan.scratch_offset = checked_add(top, alignment - 1) / alignment * alignment;
  plan.scratch_bytes = scratch_bytes;
  plan.arena_bytes = checked_add(checked_add(plan.scratch_offset, scratch_bytes), alignment);
  return plan;
}

}  // namespace hbn

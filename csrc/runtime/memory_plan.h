// Pass 2 of the executor: where every buffer of one run lives in a single arena. Buffers whose
// lifetimes do not overlap share memory (first-fit in execution order); one scratch region
// after them is sized for the hungriest op. Pure arithmetic on sizes and step numbers, so it is
// tested on its own (csrc/tests/test_memory_plan.cc).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace hbn {

// One buffer: `bytes` long, written at step `def` (-1: before the first op, the model input)
// and last read at step `last_use` (a buffer nobody reads is freed right after its step).
// A buffer of 0 bytes (a value the fuse plan never stores) takes no room.
struct BufferReq {
  size_t bytes = 0;
  int def = -1;
  int last_use = -1;
};

struct MemoryPlan {
  std::vector<size_t> offset;  // per buffer, in the order given
  size_t scratch_offset = 0, scratch_bytes = 0;
  size_t arena_bytes = 0;  // everything, plus slack for aligning the base
};

// Buffers are allocated step by step (all buffers defined at a step in the order given, then
// those whose last use is that step freed). Throws std::overflow_error when a size sum wraps.
MemoryPlan plan_memory(const std::vector<BufferReq>& buffers, size_t scratch_bytes, size_t alignment);

}  // namespace hbn

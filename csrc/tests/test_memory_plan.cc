// The memory plan on its own: buffers whose lifetimes do not overlap share bytes, live ones
// never do, the scratch region sits after every buffer, and a size sum that would wrap throws.
#include <stdexcept>

#include "runtime/memory_plan.h"
#include "tests/check.h"

namespace {

bool overlap(size_t a, size_t an, size_t b, size_t bn) { return a < b + bn && b < a + an; }

void test_reuse_and_no_overlap() {
  // chain: in -> v1 -> v2 -> v3, plus v1 also read at step 2 (a skip connection)
  const std::vector<hbn::BufferReq> bufs = {
      {128, -1, 0}, {256, 0, 2}, {64, 1, 2}, {128, 2, 3}, {64, 2, 2}};
  const hbn::MemoryPlan p = hbn::plan_memory(bufs, 1000, 64);
  for (size_t i = 0; i < bufs.size(); ++i) {
    CHECK(p.offset[i] % 64 == 0 || bufs[i].bytes % 64 != 0, "offset %zu unaligned", p.offset[i]);
    for (size_t j = i + 1; j < bufs.size(); ++j) {
      const bool both_live = std::max(bufs[i].def, bufs[j].def) <=
                             std::min(std::max(bufs[i].def, bufs[i].last_use), std::max(bufs[j].def, bufs[j].last_use));
      if (both_live)
        CHECK(!overlap(p.offset[i], bufs[i].bytes, p.offset[j], bufs[j].bytes),
              "live buffers %zu and %zu overlap", i, j);
    }
    CHECK(p.offset[i] + bufs[i].bytes <= p.scratch_offset, "buffer %zu runs into scratch", i);
  }
  // the input (dead after step 0) is reused by v2, defined at step 1
  CHECK(p.offset[2] == 0, "v2 at %zu, expected the input's freed bytes at 0", p.offset[2]);
  CHECK(p.scratch_offset % 64 == 0, "scratch unaligned");
  CHECK(p.scratch_bytes == 1000 && p.arena_bytes == p.scratch_offset + 1000 + 64, "arena size");
}

void test_dead_buffer_freed_at_once() {
  // a value nobody reads (last_use < def) is freed at its own step
  const std::vector<hbn::BufferReq> bufs = {{64, -1, 0}, {64, 0, -1}, {64, 1, 1}};
  const hbn::MemoryPlan p = hbn::plan_memory(bufs, 0, 64);
  CHECK(p.offset[2] == 0, "reuse after a dead value: %zu", p.offset[2]);
}

void test_empty_buffer_takes_no_room() {
  // A 0-byte buffer (a value the fuse plan never stores) defined while another buffer lives at
  // offset 0 must not displace it from the live set: the third buffer may not land on the first.
  const std::vector<hbn::BufferReq> bufs = {{64, -1, 2}, {0, 0, 1}, {64, 1, 2}};
  const hbn::MemoryPlan p = hbn::plan_memory(bufs, 0, 64);
  CHECK(!overlap(p.offset[0], 64, p.offset[2], 64), "live buffers overlap around an empty one");
}

void test_overflow_throws() {
  const std::vector<hbn::BufferReq> bufs = {{SIZE_MAX / 2 + 1, -1, 1}, {SIZE_MAX / 2 + 1, 0, 1}};
  bool threw = false;
  try {
    hbn::plan_memory(bufs, 0, 64);
  } catch (const std::overflow_error&) {
    threw = true;
  }
  CHECK(threw, "a wrapping arena size must throw");
}

}  // namespace

int main() {
  test_reuse_and_no_overlap();
  test_dead_buffer_freed_at_once();
  test_empty_buffer_takes_no_room();
  test_overflow_throws();
  return hbn_test::finish("test_memory_plan");
}

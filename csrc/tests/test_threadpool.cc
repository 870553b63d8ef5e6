// The thread pool: every index covered exactly once, chunks respect the grain (static) or are
// exactly the requested chunks (dynamic), a busy thread's share is taken by the others, and a
// pool can be resized between jobs (a restarted worker must not re-run the previous job).
#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "hbn/threadpool.h"
#include "tests/check.h"


static void check_cover(hbn::ThreadPool& pool, int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> hits(n);
  for (auto& h : hits) h = 0;
  std::atomic<int> max_thread{0};
  pool.parallel_for(
      n,
      [&](int64_t b, int64_t e, int t) {
        CHECK(b < e, "empty chunk [%lld, %lld)", (long long)b, (long long)e);
        CHECK(t >= 0 && t < pool.num_threads(), "thread index %d", t);
        if (e != n) CHECK(e - b >= grain, "chunk of %lld below grain %lld", (long long)(e - b), (long long)grain);
        for (int64_t i = b; i < e; ++i) hits[i]++;
        int m = max_thread.load();
        while (t > m && !max_thread.compare_exchange_weak(m, t)) {
        }
      },
      grain);
  for (int64_t i = 0; i < n; ++i) CHECK(hits[i] == 1, "index %lld hit %d times", (long long)i, hits[i].load());
}

static void check_dynamic(hbn::ThreadPool& pool, int64_t n, int64_t chunk) {
  std::vector<std::atomic<int>> hits(n);
  for (auto& h : hits) h = 0;
  std::vector<std::atomic<int>> slot_busy(pool.num_threads());
  for (auto& b : slot_busy) b = 0;
  pool.parallel_for_dynamic(
      n,
      [&](int64_t b, int64_t e, int t) {
        CHECK(t >= 0 && t < pool.num_threads(), "thread index %d", t);
        CHECK(b % chunk == 0 && (e - b == chunk || e == n), "chunk [%lld, %lld) off the grid of %lld",
              (long long)b, (long long)e, (long long)chunk);
        // Two chunks never run at once on one slot: per-thread scratch stays private.
        CHECK(slot_busy[t].fetch_add(1) == 0, "slot %d used by two chunks at once", t);
        for (int64_t i = b; i < e; ++i) hits[i]++;
        slot_busy[t].fetch_sub(1);
      },
      chunk);
  for (int64_t i = 0; i < n; ++i) CHECK(hits[i] == 1, "index %lld hit %d times", (long long)i, hits[i].load());
}

// Whichever thread takes chunk 0 stalls; the other must take every other chunk meanwhile.
static void check_dynamic_balances(hbn::ThreadPool& pool) {
  const int64_t n = 64;
  std::atomic<int> stalled_thread{-1};
  std::atomic<int> others_done{0}, by_stalled{0};
  pool.parallel_for_dynamic(
      n,
      [&](int64_t b, int64_t, int t) {
        if (b == 0) {
          stalled_thread = t;
          for (int i = 0; i < 2000000 && others_done.load() < n - 1; ++i) std::this_thread::yield();
          return;
        }
        if (t == stalled_thread.load()) by_stalled++;
        others_done++;
      },
      1);
  CHECK(others_done.load() == n - 1, "chunks run: %d of %lld", others_done.load(), (long long)(n - 1));
  // The stalled thread may have run chunks before it claimed chunk 0, never after: with 2
  // threads and chunk 0 claimed first by one of them, almost all go to the other.
  CHECK(by_stalled.load() < n / 2, "the stalled thread ran %d of %lld chunks", by_stalled.load(),
        (long long)(n - 1));
}

int main() {
  hbn::ThreadPool pool(1);
  check_dynamic(pool, 10, 3);
  check_cover(pool, 17, 1);
  for (int round = 0; round < 3; ++round) {
    pool.set_num_threads(2);
    for (int64_t n : {1, 2, 3, 64, 1001}) check_cover(pool, n, 1);
    check_cover(pool, 100, 60);
    pool.set_num_threads(1);
    check_cover(pool, 5, 1);
  }
  pool.set_num_threads(3);
  for (int i = 0; i < 200; ++i) check_cover(pool, 7 + i % 5, 1);
  for (int i = 0; i < 200; ++i) check_dynamic(pool, 1 + i % 37, 1 + i % 4);
  pool.set_num_threads(2);
  for (int i = 0; i < 20; ++i) check_dynamic_balances(pool);
  // Static and dynamic jobs interleaved on one pool.
  for (int i = 0; i < 100; ++i) {
    check_cover(pool, 9, 1);
    check_dynamic(pool, 9, 2);
  }
  return hbn_test::finish("test_threadpool");
}

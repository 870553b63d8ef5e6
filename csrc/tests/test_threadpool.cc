// The thread pool: every index covered exactly once, chunks respect the grain, and a pool can be
// resized between jobs (a restarted worker must not re-run the previous job).
#include <atomic>
#include <cstdio>
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

int main() {
  hbn::ThreadPool pool(1);
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
  return hbn_test::finish("test_threadpool");
}

// A small persistent thread pool. Kernels split their outer loop with parallel_for; the calling
// thread takes part, so a pool of 1 thread runs everything inline with no synchronisation.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace hbn {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads = 1);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }
  // Restarts the workers with a new count (>= 1). Not to be called while a parallel_for runs.
  void set_num_threads(int n);

  // Calls fn(begin, end, thread_index) over disjoint chunks covering [0, n). Chunks are
  // contiguous and at most num_threads() of them, each at least `grain` long (except the last),
  // so a kernel can give each thread a large, cache-friendly block. Blocks until all finish.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                    int64_t grain = 1);

  // Calls fn(begin, end, thread_index) over the chunks [k * chunk, (k + 1) * chunk) of [0, n),
  // handed out one at a time to whichever thread is free: a thread the OS delays (a shared
  // machine) or a slower core (big.LITTLE) takes fewer chunks instead of holding up the rest.
  // Which thread runs a chunk varies between calls; thread_index stays a per-thread slot.
  void parallel_for_dynamic(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                            int64_t chunk);

 private:
  void start(int n);
  void stop();
  void worker(int index, uint64_t first_generation);
  void dispatch(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn, int64_t chunk,
                int64_t parts, bool dynamic);
  void run_share(int index);  // this thread's part of the current job

  int num_threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex run_mu_;  // one parallel_for at a time per pool
  std::mutex mu_;      // guards sleeping: cv predicates are re-checked under it
  std::condition_variable cv_work_, cv_done_;
  // The job of the current generation; written before generation_ is bumped (release) and read
  // by workers after they observe the bump (acquire).
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0, job_chunk_ = 0;
  int64_t job_parts_ = 0;
  bool job_dynamic_ = false;
  std::atomic<int64_t> next_chunk_{0};  // dynamic jobs: the next unclaimed chunk
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};  // workers that have not finished (or skipped) the current job
  std::atomic<bool> quit_{false};
};

// The pool kernels use when the caller passes none (tests, benchmarks). Thread-count set from
// Python via hbn_engine.set_num_threads; each loaded Model owns its own pool.
ThreadPool& default_pool();

}  // namespace hbn

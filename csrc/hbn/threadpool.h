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
  // The largest thread count a pool accepts. Work is split into at most num_threads() parts,
  // so threads beyond the CPU's hardware threads only add wake-ups and contention; 1024 is
  // above every current machine's count (a 2-socket 192-core SMT server has 768) while a count
  // like 10**6 would exhaust the process's thread and stack limits (8 MiB of stack each).
  static constexpr int kMaxThreads = 1024;

  // Throws std::invalid_argument unless 1 <= num_threads <= kMaxThreads, and the
  // std::system_error of a failed thread creation (after joining those it made).
  explicit ThreadPool(int num_threads = 1);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_.load(std::memory_order_acquire); }
  // Adds or retires workers to reach n threads. Safe to call while other threads run
  // parallel_for on this pool (it waits for the running job). Throws std::invalid_argument
  // unless 1 <= n <= kMaxThreads; on any failure (std::system_error from thread creation,
  // std::bad_alloc) the pool is left exactly as it was: same count, same running workers.
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
  // Only threads with index < max_threads take part, so a caller with per-slot scratch for
  // `max_threads` slots never sees a larger index whatever the pool's count.
  void parallel_for_dynamic(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                            int64_t chunk, int max_threads = kMaxThreads);

 private:
  static void check_count(int n);
  // Grows the workers to n - 1 (indices 1..n-1); on failure retires the ones it added and
  // rethrows. Caller holds run_mu_ (or is the constructor).
  void grow(int n);
  // Retires workers with index >= n (n = 0: all of them) and joins them.
  void shrink(int n);
  void worker(int index, uint64_t first_generation);
  // Runs a job of `parts` parts; caller holds run_mu_ and num_threads() > 1.
  void dispatch(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn, int64_t chunk,
                int64_t parts, bool dynamic, int slots);
  void run_share(int index);  // this thread's part of the current job

  // Written under run_mu_ only; atomic so num_threads() may be read from any thread.
  std::atomic<int> num_threads_{1};
  std::vector<std::thread> workers_;  // workers_[i] runs worker(i + 1)
  std::mutex run_mu_;  // one job or resize at a time per pool
  std::mutex mu_;      // guards sleeping: cv predicates are re-checked under it
  std::condition_variable cv_work_, cv_done_;
  // The job of the current generation; written before generation_ is bumped (release) and read
  // by workers after they observe the bump (acquire).
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0, job_chunk_ = 0;
  int64_t job_parts_ = 0;
  bool job_dynamic_ = false;
  int job_slots_ = 0;  // dynamic jobs: threads with a smaller index take part
  std::atomic<int64_t> next_chunk_{0};  // dynamic jobs: the next unclaimed chunk
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};  // workers that have not finished (or skipped) the current job
  std::atomic<int> live_{1};     // a worker whose index is >= live_ exits
};

// The pool kernels use when the caller passes none (tests, benchmarks). Thread-count set from
// Python via hbn_engine.set_num_threads; each loaded Model owns its own pool.
ThreadPool& default_pool();

}  // namespace hbn

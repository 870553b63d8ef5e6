#include "hbn/threadpool.h"

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace hbn {
namespace {

// A layer of a binary network takes tens of microseconds; waking a sleeping thread through the
// kernel can take as long. So workers spin for a while after each job (and the caller spins
// while it waits for them) before falling back to the condition variable, as OpenMP runtimes
// do. The spin is bounded, so an idle pool stops using CPU within this time.
constexpr auto kSpin = std::chrono::microseconds(200);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Spins until pred() holds or kSpin has passed; returns pred().
template <typename Pred>
bool spin_until(const Pred& pred) {
  if (pred()) return true;
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      cpu_relax();
      if (pred()) return true;
    }
    if (std::chrono::steady_clock::now() > deadline) return pred();
  }
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) { start(std::max(1, num_threads)); }

ThreadPool::~ThreadPool() { stop(); }

void ThreadPool::set_num_threads(int n) {
  n = std::max(1, n);
  if (n == num_threads_) return;
  stop();
  start(n);
}

void ThreadPool::start(int n) {
  num_threads_ = n;
  quit_.store(false);
  // A restarted worker must not mistake the last finished job for a new one.
  const uint64_t gen = generation_.load();
  for (int i = 1; i < n; ++i) workers_.emplace_back([this, i, gen] { worker(i, gen); });
}

void ThreadPool::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_.store(true);
  }
  cv_work_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void ThreadPool::worker(int index, uint64_t seen) {
  for (;;) {
    auto has_work = [&] {
      return quit_.load(std::memory_order_relaxed) ||
             generation_.load(std::memory_order_acquire) != seen;
    };
    if (!spin_until(has_work)) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_work_.wait(lock, has_work);
    }
    if (quit_.load()) return;
    seen = generation_.load(std::memory_order_acquire);
    run_share(index);
    // Every worker acknowledges every job, even one it had no chunk of, so the caller never
    // rewrites the job fields while a worker may still read them.
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_done_.notify_one();
    }
  }
}

void ThreadPool::run_share(int index) {
  if (!job_dynamic_) {
    if (index < job_parts_) {
      const int64_t begin = index * job_chunk_;
      (*job_)(begin, std::min(job_n_, begin + job_chunk_), index);
    }
    return;
  }
  for (;;) {
    const int64_t k = next_chunk_.fetch_add(1, std::memory_order_relaxed);
    if (k >= job_parts_) return;
    const int64_t begin = k * job_chunk_;
    (*job_)(begin, std::min(job_n_, begin + job_chunk_), index);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                              int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int parts = static_cast<int>(std::min<int64_t>(num_threads_, (n + grain - 1) / grain));
  if (parts <= 1) {
    fn(0, n, 0);
    return;
  }
  const int64_t chunk = std::max(grain, (n + parts - 1) / parts);
  parts = static_cast<int>((n + chunk - 1) / chunk);
  dispatch(n, fn, chunk, parts, false);
}

void ThreadPool::parallel_for_dynamic(int64_t n,
                                      const std::function<void(int64_t, int64_t, int)>& fn,
                                      int64_t chunk) {
  if (n <= 0) return;
  chunk = std::max<int64_t>(1, chunk);
  const int64_t parts = (n + chunk - 1) / chunk;
  if (num_threads_ <= 1 || parts <= 1) {
    for (int64_t b = 0; b < n; b += chunk) fn(b, std::min(n, b + chunk), 0);
    return;
  }
  dispatch(n, fn, chunk, parts, true);
}

void ThreadPool::dispatch(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                          int64_t chunk, int64_t parts, bool dynamic) {
  std::lock_guard<std::mutex> run_lock(run_mu_);
  job_ = &fn;
  job_n_ = n;
  job_chunk_ = chunk;
  job_parts_ = parts;
  job_dynamic_ = dynamic;
  next_chunk_.store(0, std::memory_order_relaxed);
  pending_.store(num_threads_ - 1, std::memory_order_relaxed);
  {
    // Under mu_ so a worker about to sleep either sees the new generation or is already
    // waiting when notified.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_work_.notify_all();
  run_share(0);
  auto done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
  if (!spin_until(done)) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_done_.wait(lock, done);
  }
  job_ = nullptr;
}

ThreadPool& default_pool() {
  static ThreadPool pool(1);
  return pool;
}

}  // namespace hbn

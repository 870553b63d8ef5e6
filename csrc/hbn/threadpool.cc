#include "hbn/threadpool.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>

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

void ThreadPool::check_count(int n) {
  if (n < 1 || n > kMaxThreads)
    throw std::invalid_argument("num_threads must be between 1 and " + std::to_string(kMaxThreads) + ", got " +
                                std::to_string(n));
}

ThreadPool::ThreadPool(int num_threads) {
  check_count(num_threads);
  grow(num_threads);
  num_threads_.store(num_threads, std::memory_order_release);
}

ThreadPool::~ThreadPool() { shrink(0); }

void ThreadPool::set_num_threads(int n) {
  check_count(n);
  std::lock_guard<std::mutex> run_lock(run_mu_);
  const int current = num_threads_.load(std::memory_order_relaxed);
  if (n == current) return;
  if (n > current) grow(n);  // throws with the pool as it was
  else shrink(n);
  num_threads_.store(n, std::memory_order_release);
}

void ThreadPool::grow(int n) {
  const int before = static_cast<int>(workers_.size()) + 1;
  workers_.reserve(static_cast<size_t>(n - 1));
  // No job runs (run_mu_ is held), so the generation is stable: a new worker must not take
  // the last finished job for a new one.
  const uint64_t gen = generation_.load();
  live_.store(n);
  try {
    for (int i = before; i < n; ++i) workers_.emplace_back([this, i, gen] { worker(i, gen); });
  } catch (...) {
    // Typically std::system_error (EAGAIN: thread or memory limits). Retire exactly the
    // workers added here; the others never stopped.
    shrink(before);
    throw;
  }
}

void ThreadPool::shrink(int n) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    live_.store(n);
  }
  cv_work_.notify_all();
  const size_t keep = static_cast<size_t>(std::max(0, n - 1));
  for (size_t i = keep; i < workers_.size(); ++i) workers_[i].join();
  workers_.resize(std::min(keep, workers_.size()));
}

void ThreadPool::worker(int index, uint64_t seen) {
  for (;;) {
    auto has_work = [&] {
      return index >= live_.load(std::memory_order_relaxed) ||
             generation_.load(std::memory_order_acquire) != seen;
    };
    if (!spin_until(has_work)) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_work_.wait(lock, has_work);
    }
    if (index >= live_.load()) return;
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
  if (index >= job_slots_) return;
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
  const int64_t most = (n + grain - 1) / grain;
  if (most <= 1 || num_threads() <= 1) {
    fn(0, n, 0);
    return;
  }
  // The count is read again under the lock: another thread may have resized the pool.
  std::unique_lock<std::mutex> run_lock(run_mu_);
  int parts = static_cast<int>(std::min<int64_t>(num_threads_.load(std::memory_order_relaxed), most));
  if (parts <= 1) {
    run_lock.unlock();
    fn(0, n, 0);
    return;
  }
  const int64_t chunk = std::max(grain, (n + parts - 1) / parts);
  parts = static_cast<int>((n + chunk - 1) / chunk);
  dispatch(n, fn, chunk, parts, false, parts);
}

void ThreadPool::parallel_for_dynamic(int64_t n,
                                      const std::function<void(int64_t, int64_t, int)>& fn,
                                      int64_t chunk, int max_threads) {
  if (n <= 0) return;
  chunk = std::max<int64_t>(1, chunk);
  const int64_t parts = (n + chunk - 1) / chunk;
  auto inline_run = [&] {
    for (int64_t b = 0; b < n; b += chunk) fn(b, std::min(n, b + chunk), 0);
  };
  if (num_threads() <= 1 || parts <= 1 || max_threads <= 1) return inline_run();
  std::unique_lock<std::mutex> run_lock(run_mu_);
  if (num_threads_.load(std::memory_order_relaxed) <= 1) {
    run_lock.unlock();
    return inline_run();
  }
  dispatch(n, fn, chunk, parts, true, max_threads);
}

void ThreadPool::dispatch(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                          int64_t chunk, int64_t parts, bool dynamic, int slots) {
  job_ = &fn;
  job_n_ = n;
  job_chunk_ = chunk;
  job_parts_ = parts;
  job_dynamic_ = dynamic;
  job_slots_ = slots;
  next_chunk_.store(0, std::memory_order_relaxed);
  pending_.store(num_threads_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
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

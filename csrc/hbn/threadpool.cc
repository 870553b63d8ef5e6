#include "hbn/threadpool.h"

#include <algorithm>

namespace hbn {

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
  quit_ = false;
  // A restarted worker must not mistake the last finished job for a new one.
  const uint64_t gen = generation_;
  for (int i = 1; i < n; ++i) workers_.emplace_back([this, i, gen] { worker(i, gen); });
}

void ThreadPool::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  cv_work_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void ThreadPool::worker(int index, uint64_t seen) {
  for (;;) {
    const std::function<void(int64_t, int64_t, int)>* job;
    int64_t begin, end;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_work_.wait(lock, [&] { return quit_ || generation_ != seen; });
      if (quit_) return;
      seen = generation_;
      if (index >= job_parts_) continue;
      job = job_;
      begin = index * job_chunk_;
      end = std::min(job_n_, begin + job_chunk_);
    }
    (*job)(begin, end, index);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) cv_done_.notify_one();
    }
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
  std::lock_guard<std::mutex> run_lock(run_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    job_n_ = n;
    job_chunk_ = chunk;
    job_parts_ = parts;
    pending_ = parts - 1;
    ++generation_;
  }
  cv_work_.notify_all();
  fn(0, std::min(n, chunk), 0);
  std::unique_lock<std::mutex> lock(mu_);
  cv_done_.wait(lock, [&] { return pending_ == 0; });
  job_ = nullptr;
}

ThreadPool& default_pool() {
  static ThreadPool pool(1);
  return pool;
}

}  // namespace hbn

// One persistent pool of worker threads shared by every kernel (sized by `-t`). No thread
// is created per operation. parallel_for is not re-entrant: a task must not call back
// into the same pool. One caller at a time (the pool serialises callers with a mutex).
//
// Dispatch is built for many short calls (decode issues ~7 per layer): the caller publishes
// a job by bumping a generation counter; workers spin briefly on it before sleeping on a
// condition variable, and the caller spins briefly on a pending-worker count before
// sleeping. Sleepers are counted, so the wake-up syscalls happen only when someone sleeps.
// A pool with more threads than hardware threads never spins (it would starve the thread
// being waited for).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tulu {

// Runs work(0) .. work(count - 1) on count threads (the caller's among them) and returns
// when all are done, rethrowing the first exception. For one-off load-time work that runs
// before any ThreadPool exists (repacking weights, writing a cache file).
void run_on_threads(size_t count, const std::function<void(size_t)>& work);

class ThreadPool {
 public:
  // num_threads counts the calling thread: 1 means no workers, everything runs inline.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(begin, end) over [0, n) split into at most num_threads contiguous chunks of
  // at least min_chunk items; returns when all chunks are done. Exceptions from fn are
  // rethrown in the caller (the first one).
  void parallel_for(size_t n, size_t min_chunk, const std::function<void(size_t, size_t)>& fn);

 private:
  void worker_loop(int index);
  // Waits until generation_ differs from `seen` or stop_ is set; returns the new generation.
  uint64_t wait_for_job(uint64_t seen);
  void wait_for_workers();
  void finish_chunk(std::exception_ptr error);

  std::vector<std::thread> workers_;
  bool spin_ = true;  // false when the pool has more threads than the hardware
  std::mutex call_mutex_;  // one parallel_for at a time

  // The job: written by the caller before generation_ is bumped, read by workers after
  // they observe the bump; unchanged until every worker has decremented pending_.
  const std::function<void(size_t, size_t)>* job_ = nullptr;
  size_t job_n_ = 0;
  size_t job_chunks_ = 0;

  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};  // workers (all of them) not yet done with this generation
  std::atomic<bool> stop_{false};

  std::mutex sleep_mutex_;  // guards the two condition variables' sleeps and error_
  std::condition_variable work_ready_;
  std::condition_variable work_done_;
  std::atomic<int> sleeping_workers_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::exception_ptr error_;
};

// Default thread count: the number of hardware threads (at least 1).
int default_thread_count();

}  // namespace tulu

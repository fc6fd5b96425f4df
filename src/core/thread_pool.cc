#include "core/thread_pool.h"

#include <algorithm>
#include <chrono>


namespace tulu {

int default_thread_count() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

namespace {

// How long a thread spins on a flag before sleeping: long enough to cover the serial work
// between two kernels of a decode step, short enough not to burn a core when idle.
constexpr auto kSpinTime = std::chrono::microseconds(200);

// Spins until done() or kSpinTime has passed, yielding every few checks so that a busy or
// oversubscribed machine (more runnable threads than cores) still runs the thread being
// waited for. No PAUSE instruction: measured on this 2-vCPU VM, PAUSE loops made a
// spaced-out call ~5x slower (pause-loop exits to the hypervisor), while sched_yield kept
// it at a few microseconds (bench/thread_pool_bench.cc, docs/benchmarks.md).
template <typename Done>
bool spin_until(bool spin, Done done) {
  if (!spin) return done();
  const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
  for (int i = 1;; ++i) {
    if (done()) return true;
    if (i % 64 == 0) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::yield();
    }
  }
}

// Chunk c of n items split into `chunks` nearly equal contiguous ranges.
std::pair<size_t, size_t> chunk_range(size_t n, size_t chunks, size_t c) {
  const size_t base = n / chunks, extra = n % chunks;
  const size_t begin = c * base + std::min(c, extra);
  return {begin, begin + base + (c < extra ? 1 : 0)};
}

}  // namespace

void run_on_threads(size_t count, const std::function<void(size_t)>& work) {
  std::vector<std::exception_ptr> errors(std::max<size_t>(count, 1));
  auto guarded = [&](size_t t) {
    try {
      work(t);
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (size_t t = 1; t < count; ++t) threads.emplace_back(guarded, t);
  if (count > 0) guarded(0);
  for (std::thread& th : threads) th.join();
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

ThreadPool::ThreadPool(int num_threads) {
  const int workers = std::max(1, num_threads) - 1;
  // More threads than hardware threads: a spinning thread would take the core from the one
  // it waits for (measured: 20,000 four-thread calls on 2 vCPUs took 40 s spinning, 1.3 s
  // sleeping at once), so such a pool sleeps without spinning.
  spin_ = num_threads <= default_thread_count();
  workers_.reserve(static_cast<size_t>(workers));
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this, i] { worker_loop(i + 1); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    stop_.store(true);
  }
  work_ready_.notify_all();
  for (auto& t : workers_) t.join();
}

// The sleep protocol (both directions): the sleeper increments its sleeping flag, then
// re-checks the condition under sleep_mutex_; the waker changes the condition, then reads
// the flag and, if set, notifies under sleep_mutex_. With sequentially consistent atomics
// one of the two sees the other's write, so no wake-up is lost.
uint64_t ThreadPool::wait_for_job(uint64_t seen) {
  auto ready = [&] { return stop_.load() || generation_.load() != seen; };
  if (!spin_until(spin_, ready)) {
    std::unique_lock<std::mutex> lock(sleep_mutex_);
    sleeping_workers_.fetch_add(1);
    work_ready_.wait(lock, ready);
    sleeping_workers_.fetch_sub(1);
  }
  return generation_.load();
}

void ThreadPool::wait_for_workers() {
  auto done = [&] { return pending_.load() == 0; };
  if (spin_until(spin_, done)) return;
  std::unique_lock<std::mutex> lock(sleep_mutex_);
  caller_sleeping_.store(true);
  work_done_.wait(lock, done);
  caller_sleeping_.store(false);
}

void ThreadPool::finish_chunk(std::exception_ptr error) {
  if (error) {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    if (!error_) error_ = error;
  }
  if (pending_.fetch_sub(1) == 1 && caller_sleeping_.load()) {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    work_done_.notify_one();
  }
}

void ThreadPool::parallel_for(size_t n, size_t min_chunk,
                              const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  min_chunk = std::max<size_t>(1, min_chunk);
  const size_t chunks = std::min<size_t>(static_cast<size_t>(num_threads()),
                                         (n + min_chunk - 1) / min_chunk);
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> call_lock(call_mutex_);
  job_ = &fn;
  job_n_ = n;
  job_chunks_ = chunks;
  error_ = nullptr;  // no worker touches it between generations
  // Every worker checks in, even one without a chunk, so that none can still be reading
  // the job fields when the next call rewrites them.
  pending_.store(static_cast<int>(workers_.size()));
  generation_.fetch_add(1);
  if (sleeping_workers_.load() > 0) {
    std::lock_guard<std::mutex> lock(sleep_mutex_);
    work_ready_.notify_all();
  }
  std::exception_ptr caller_error;
  try {
    auto [b, e] = chunk_range(n, chunks, 0);
    fn(b, e);
  } catch (...) {
    caller_error = std::current_exception();
  }
  wait_for_workers();
  job_ = nullptr;
  if (caller_error) std::rethrow_exception(caller_error);
  if (error_) std::rethrow_exception(error_);
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    seen = wait_for_job(seen);
    if (stop_.load()) return;
    const size_t c = static_cast<size_t>(index);
    std::exception_ptr error;
    if (c < job_chunks_) {
      try {
        auto [b, e] = chunk_range(job_n_, job_chunks_, c);
        (*job_)(b, e);
      } catch (...) {
        error = std::current_exception();
      }
    }
    finish_chunk(error);
  }
}

}  // namespace tulu

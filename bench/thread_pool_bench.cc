// Dispatch latency of ThreadPool::parallel_for: the time of one call whose chunks do no
// work, i.e. the cost of waking the workers and waiting for them (decode calls it ~7× per
// layer). Usage: thread_pool_bench [threads...]  (default: 2 and 4).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/thread_pool.h"

int main(int argc, char** argv) {
  std::vector<int> thread_counts;
  for (int i = 1; i < argc; ++i) thread_counts.push_back(std::atoi(argv[i]));
  if (thread_counts.empty()) thread_counts = {2, 4};
  for (int threads : thread_counts) {
    tulu::ThreadPool pool(threads);
    volatile size_t sink = 0;
    auto run = [&](int calls) {
      const auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < calls; ++i)
        pool.parallel_for(static_cast<size_t>(threads), 1, [&](size_t b, size_t) { sink = b; });
      return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
                 .count() /
             calls;
    };
    run(1000);  // warm-up
    const double back_to_back = run(20000);
    // With serial work between calls (as decode has between kernels): 20 µs of spinning.
    const auto start = std::chrono::steady_clock::now();
    const int spaced_calls = 5000;
    double busy_us = 0;
    for (int i = 0; i < spaced_calls; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      while (std::chrono::steady_clock::now() - t0 < std::chrono::microseconds(20)) {
      }
      busy_us += std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                     .count();
      pool.parallel_for(static_cast<size_t>(threads), 1, [&](size_t b, size_t) { sink = b; });
    }
    const double total_us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count();
    std::printf("threads %d: back-to-back %.2f us/call, after 20 us of serial work %.2f us/call\n",
                threads, back_to_back, (total_us - busy_us) / spaced_calls);
  }
  return 0;
}

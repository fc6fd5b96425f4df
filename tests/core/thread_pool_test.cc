#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <vector>

namespace tulu {
namespace {

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (size_t n : {0ul, 1ul, 2ul, 7ul, 64ul, 1001ul}) {
      for (size_t min_chunk : {1ul, 4ul, 100ul}) {
        std::vector<std::atomic<int>> hits(n);
        pool.parallel_for(n, min_chunk, [&](size_t b, size_t e) {
          ASSERT_LE(b, e);
          for (size_t i = b; i < e; ++i) hits[i]++;
        });
        for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
      }
    }
  }
}

TEST(ThreadPool, ManySmallJobsInARow) {
  ThreadPool pool(4);
  std::atomic<long> sum{0};
  for (int round = 0; round < 20000; ++round) {
    pool.parallel_for(4, 1, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) sum += static_cast<long>(i);
    });
  }
  EXPECT_EQ(sum.load(), 20000L * 6);
}

TEST(ThreadPool, ExceptionReachesCaller) {
  ThreadPool pool(3);
  EXPECT_THROW(pool.parallel_for(30, 1, [](size_t b, size_t) {
    if (b > 0) throw std::runtime_error("worker failed");
  }), std::runtime_error);
  // The pool still works afterwards.
  std::atomic<int> count{0};
  pool.parallel_for(30, 1, [&](size_t b, size_t e) { count += static_cast<int>(e - b); });
  EXPECT_EQ(count.load(), 30);
}

TEST(RunOnThreads, RunsEveryIndexOnItsOwnThreadAndRethrows) {
  for (size_t count : {0u, 1u, 3u}) {
    std::vector<std::thread::id> ids(count);
    run_on_threads(count, [&](size_t t) { ids[t] = std::this_thread::get_id(); });
    for (size_t t = 0; t < count; ++t) {
      EXPECT_NE(ids[t], std::thread::id()) << t;
      for (size_t u = 0; u < t; ++u) EXPECT_NE(ids[t], ids[u]);
    }
    if (count > 0) {
      EXPECT_EQ(ids[0], std::this_thread::get_id()) << "index 0 runs on the caller";
    }
  }
  std::atomic<int> finished{0};
  EXPECT_THROW(run_on_threads(3, [&](size_t t) {
    if (t == 2) throw std::runtime_error("thread 2 failed");
    ++finished;
  }), std::runtime_error);
  EXPECT_EQ(finished.load(), 2) << "the others ran to the end before the rethrow";
}

}  // namespace
}  // namespace tulu

#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <stdexcept>
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

}  // namespace
}  // namespace tulu

// Memory read bandwidth, STREAM-style: sums a large array (default 1 GiB of floats, far
// larger than any cache) with 1 and 2 threads (or the counts given), each thread reading
// its own contiguous slice, and reports the best of several passes in GB/s (10⁹ bytes/s).
// This is the ceiling for decode: each generated token reads every weight once, so
// tokens/s ≤ bandwidth ÷ weight bytes. Usage: bandwidth [--mib N] [threads...]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

// Sum of a[begin, end) with 16 independent accumulators, so the loop is bound by loads
// (the compiler vectorises it) and not by the latency of one addition chain.
float sum_range(const float* a, size_t begin, size_t end) {
  float acc[16] = {};
  size_t i = begin;
  for (; i + 16 <= end; i += 16)
    for (int k = 0; k < 16; ++k) acc[k] += a[i + static_cast<size_t>(k)];
  for (; i < end; ++i) acc[0] += a[i];
  float total = 0;
  for (float v : acc) total += v;
  return total;
}

double read_gbps(const std::vector<float>& data, int threads, int passes) {
  double best = 0;
  std::vector<float> partial(static_cast<size_t>(threads));
  for (int pass = 0; pass < passes; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    const size_t n = data.size();
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        const size_t begin = n * static_cast<size_t>(t) / static_cast<size_t>(threads);
        const size_t end = n * static_cast<size_t>(t + 1) / static_cast<size_t>(threads);
        partial[static_cast<size_t>(t)] = sum_range(data.data(), begin, end);
      });
    }
    for (auto& th : pool) th.join();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(n * sizeof(float)) / seconds / 1e9);
  }
  volatile float sink = 0;  // keeps the sums observable, so the reads are not optimised away
  for (float p : partial) sink = sink + p;
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  size_t mib = 1024;
  std::vector<int> thread_counts;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--mib") == 0 && i + 1 < argc) {
      mib = static_cast<size_t>(std::atol(argv[++i]));
    } else {
      const int t = std::atoi(argv[i]);
      if (t < 1) {
        std::fprintf(stderr, "usage: bandwidth [--mib N] [threads...]\n");
        return 2;
      }
      thread_counts.push_back(t);
    }
  }
  if (thread_counts.empty()) thread_counts = {1, 2};
  std::vector<float> data(mib * 1024 * 1024 / sizeof(float));
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i & 1023) * 1e-3f;
  for (int threads : thread_counts) {
    std::printf("read bandwidth, %zu MiB, %d thread%s: %.1f GB/s (best of 5)\n", mib, threads,
                threads == 1 ? "" : "s", read_gbps(data, threads, 5));
  }
  return 0;
}

// Memory read bandwidth, STREAM-style: sums a large array (default 1 GiB of floats, far
// larger than any cache) with 1 and 2 threads (or the counts given), each thread reading
// its own contiguous slice, and reports the median and the best of 9 passes in GB/s (10⁹
// bytes/s): on a shared virtual machine single passes burst far above the sustained rate,
// so the median is the figure to divide by, the best shows the bursts.
// Two readers: plain loads (what the hardware prefetcher alone achieves) and AVX-512 loads
// with software prefetch 2 KiB ahead; and the plain reader again over a copy of the array
// with transparent huge pages advised (MADV_HUGEPAGE), as the loader advises for the
// repacked Q4_0/Q8_0 weights (decode from such memory measured 1.14–1.16× as fast as from
// 4 KiB pages; this plain sum gains less). The bound uses the fastest. This is the ceiling for decode: each
// generated token reads every weight once, so tokens/s ≤ bandwidth ÷ weight bytes.
// Usage: bandwidth [--mib N] [threads...]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <thread>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define TULU_BANDWIDTH_AVX512 1
#endif

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

#ifdef TULU_BANDWIDTH_AVX512
// The same sum with 64-byte loads, 4 accumulators and a prefetch 2 KiB ahead.
__attribute__((target("avx512f"))) float sum_range_prefetch(const float* a, size_t begin,
                                                            size_t end) {
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                   _mm512_setzero_ps()};
  size_t i = begin;
  for (; i + 64 <= end; i += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(a + i) + 2048, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(a + i) + 2048 + 64, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(a + i) + 2048 + 128, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(a + i) + 2048 + 192, _MM_HINT_T0);
    for (int k = 0; k < 4; ++k) acc[k] = _mm512_add_ps(acc[k], _mm512_loadu_ps(a + i + 16 * k));
  }
  float total = 0;
  alignas(64) float lanes[16];
  for (const __m512& v : acc) {
    _mm512_store_ps(lanes, v);
    for (float l : lanes) total += l;
  }
  for (; i < end; ++i) total += a[i];
  return total;
}
#endif

using SumFn = float (*)(const float*, size_t, size_t);

struct Rates {
  double median = 0, best = 0;
};

Rates read_gbps(const float* data, size_t n, int threads, int passes, SumFn sum) {
  std::vector<double> rates;
  std::vector<float> partial(static_cast<size_t>(threads));
  for (int pass = 0; pass < passes; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        const size_t begin = n * static_cast<size_t>(t) / static_cast<size_t>(threads);
        const size_t end = n * static_cast<size_t>(t + 1) / static_cast<size_t>(threads);
        partial[static_cast<size_t>(t)] = sum(data, begin, end);
      });
    }
    for (auto& th : pool) th.join();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rates.push_back(static_cast<double>(n * sizeof(float)) / seconds / 1e9);
  }
  volatile float sink = 0;  // keeps the sums observable, so the reads are not optimised away
  for (float p : partial) sink = sink + p;
  std::sort(rates.begin(), rates.end());
  return {rates[rates.size() / 2], rates.back()};
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
  const size_t bytes = data.size() * sizeof(float);
  const size_t huge_bytes = (bytes + (size_t{2} << 20) - 1) / (size_t{2} << 20) * (size_t{2} << 20);
  void* huge = ::mmap(nullptr, huge_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
  if (huge == MAP_FAILED) {
    std::perror("mmap");
    return 1;
  }
  (void)::madvise(huge, huge_bytes, MADV_HUGEPAGE);
  std::memcpy(huge, data.data(), bytes);
  const auto* huge_data = static_cast<const float*>(huge);
#ifdef TULU_BANDWIDTH_AVX512
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f");
#endif
  for (int threads : thread_counts) {
    const Rates plain = read_gbps(data.data(), data.size(), threads, 9, sum_range);
    Rates prefetched;
#ifdef TULU_BANDWIDTH_AVX512
    if (avx512) prefetched = read_gbps(data.data(), data.size(), threads, 9, sum_range_prefetch);
#endif
    const Rates huge_pages = read_gbps(huge_data, data.size(), threads, 9, sum_range);
    std::printf("read bandwidth, %zu MiB, %d thread%s: %.1f GB/s median of 9 passes, best %.1f "
                "(plain loads %.1f / %.1f, AVX-512 + prefetch %.1f / %.1f, huge pages advised "
                "%.1f / %.1f)\n",
                mib, threads, threads == 1 ? "" : "s",
                std::max({plain.median, prefetched.median, huge_pages.median}),
                std::max({plain.best, prefetched.best, huge_pages.best}), plain.median,
                plain.best, prefetched.median, prefetched.best, huge_pages.median,
                huge_pages.best);
  }
  ::munmap(huge, huge_bytes);
  return 0;
}

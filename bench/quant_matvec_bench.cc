// Decode-step (one activation row) throughput of tulu::quant_matmul for Q8_0 and Q4_0
// weights, in the file's layout and in the 16-row interleaved layouts made at load
// (Q8_0_R16, Q4_0_R16; tensor/quant_repack.h): GB/s of weight bytes read, for a weight set
// far larger than the caches (as in generation, where every token streams the whole model)
// and for one matrix that stays in cache (the kernel's compute ceiling). Compare the first
// with bench_bandwidth's figure. (The buffers here are plain heap memory; the model loader
// also advises huge pages for its repacked copy.)
// Usage: quant_matvec_bench [threads] [out] [in] [total MiB]  (defaults: 2 5632 2048 600)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/quant_matmul.h"
#include "tensor/quant_blocks.h"
#include "tensor/quant_repack.h"

namespace {

struct Matrices {
  tulu::DType dtype;
  std::vector<std::vector<uint8_t>> data;  // each [out, in] in blocks
};

Matrices make(tulu::DType dtype, int64_t out, int64_t in, size_t count) {
  std::mt19937 gen(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> row(static_cast<size_t>(in));
  const size_t row_bytes = tulu::dtype_row_bytes(dtype, static_cast<uint64_t>(in));
  Matrices m{dtype, {}};
  for (size_t c = 0; c < count; ++c) {
    std::vector<uint8_t> bytes(row_bytes * static_cast<size_t>(out));
    for (int64_t o = 0; o < out; ++o) {
      for (auto& v : row) v = normal(gen);
      void* dst = bytes.data() + static_cast<size_t>(o) * row_bytes;
      if (dtype == tulu::DType::Q8_0)
        tulu::quantize_row_q8_0_ref(row.data(), static_cast<tulu::BlockQ8_0*>(dst), row.size());
      else
        tulu::quantize_row_q4_0_ref(row.data(), static_cast<tulu::BlockQ4_0*>(dst), row.size());
    }
    m.data.push_back(std::move(bytes));
  }
  return m;
}

// The same matrices in the R16 layout.
Matrices interleaved(const Matrices& plain, int64_t out, int64_t in) {
  Matrices m{tulu::interleaved_dtype(plain.dtype), {}};
  const auto blocks = static_cast<size_t>(in) / tulu::kQuantBlock;
  for (const auto& bytes : plain.data) {
    std::vector<uint8_t> r16(bytes.size());
    tulu::repack_r16(plain.dtype, bytes.data(), out, blocks, r16.data());
    m.data.push_back(std::move(r16));
  }
  return m;
}

double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

struct Rate {
  double wall_gbs = 0, cpu_gbs = 0;  // cpu: per second of this thread's CPU time
};

// GB/s of weights over `passes` sweeps of every matrix, best of 5. With one thread the
// CPU-time rate is the kernel's speed even on a busy machine (time spent descheduled does
// not count); with more, only the wall-clock rate means anything.
Rate sweep(const Matrices& m, int64_t out, int64_t in, const std::vector<float>& x,
           std::vector<float>& y, tulu::ThreadPool& pool, int passes) {
  double best_wall = 1e30, best_cpu = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = thread_cpu_seconds();
    for (int p = 0; p < passes; ++p)
      for (const auto& bytes : m.data) {
        const tulu::TensorView w{m.dtype, {out, in}, bytes.data()};
        tulu::quant_matmul(x.data(), 1, w, y.data(), pool);
      }
    best_cpu = std::min(best_cpu, thread_cpu_seconds() - cpu_start);
    best_wall = std::min(
        best_wall, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  const double bytes = static_cast<double>(m.data.size() * m.data[0].size()) * passes;
  return {bytes / best_wall / 1e9, bytes / best_cpu / 1e9};
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int64_t out = argc > 2 ? std::atoll(argv[2]) : 5632;
  const int64_t in = argc > 3 ? std::atoll(argv[3]) : 2048;
  const double total_mib = argc > 4 ? std::atof(argv[4]) : 600.0;
  if (threads < 1 || out < 1 || in < 32 || in % 32 != 0 || total_mib <= 0) {
    std::fprintf(stderr, "usage: quant_matvec_bench [threads] [out] [in (multiple of 32)] [MiB]\n");
    return 2;
  }
  tulu::ThreadPool pool(threads);
  std::mt19937 gen(2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(in)), y(static_cast<size_t>(out));
  for (auto& v : x) v = normal(gen);
  std::printf("W [%lld, %lld], one activation row, %d thread(s)\n", static_cast<long long>(out),
              static_cast<long long>(in), threads);
  for (const auto dtype : {tulu::DType::Q8_0, tulu::DType::Q4_0}) {
    const double matrix_mib =
        static_cast<double>(tulu::dtype_row_bytes(dtype, static_cast<uint64_t>(in)) *
                            static_cast<size_t>(out)) /
        (1 << 20);
    const auto count = static_cast<size_t>(std::max(1.0, total_mib / matrix_mib));
    const Matrices many = make(dtype, out, in, count);
    const Matrices one = make(dtype, out, in, 1);
    const bool repackable = tulu::rows16_repackable(out, in);
    for (const bool r16 : {false, true}) {
      if (r16 && !repackable) continue;
      Matrices many_r16, one_r16;
      if (r16) {
        many_r16 = interleaved(many, out, in);
        one_r16 = interleaved(one, out, in);
      }
      const Matrices& stream = r16 ? many_r16 : many;
      const Matrices& cache = r16 ? one_r16 : one;
      const Rate streamed = sweep(stream, out, in, x, y, pool, 2);
      const Rate cached = sweep(cache, out, in, x, y, pool, 100);
      std::printf("%-8s: streamed %.0f MiB: %.1f GB/s; one %.1f MiB matrix (cache): %.1f GB/s",
                  std::string(tulu::dtype_name(stream.dtype)).c_str(),
                  matrix_mib * static_cast<double>(count), streamed.wall_gbs, matrix_mib,
                  cached.wall_gbs);
      if (threads == 1)
        std::printf(" (per CPU second: streamed %.1f, cache %.1f)", streamed.cpu_gbs,
                    cached.cpu_gbs);
      std::printf("\n");
    }
  }
  return 0;
}

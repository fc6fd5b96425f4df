// GEMM throughput of tulu::matmul (the prompt path: rows > 1) for F32, BF16 and F16
// weights (and BF16 with --bf16-activations), of its sgemm path (matmul_blas), and of one
// plain cblas_sgemm for comparison. Reports GFLOP/s (2·rows·out·in
// per product), best of several runs, and the OpenBLAS kernel set in use.
// Usage: matmul_bench [threads] [rows] [out] [in]   (defaults: 2 512 2048 2048)
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "tensor/half.h"

namespace {

template <typename Fn>
double best_seconds(Fn fn, int runs) {
  fn();  // warm-up: thread-local buffers, page faults, worker wake-up
  double best = 1e30;
  for (int r = 0; r < runs; ++r) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int64_t rows = argc > 2 ? std::atoll(argv[2]) : 512;
  const int64_t out = argc > 3 ? std::atoll(argv[3]) : 2048;
  const int64_t in = argc > 4 ? std::atoll(argv[4]) : 2048;
  if (threads < 1 || rows < 1 || out < 1 || in < 1) {
    std::fprintf(stderr, "usage: matmul_bench [threads] [rows] [out] [in]\n");
    return 2;
  }
  std::mt19937 gen(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(rows * in)), w(static_cast<size_t>(out * in));
  for (auto& v : x) v = normal(gen);
  for (auto& v : w) v = normal(gen);
  std::vector<uint16_t> w_bf16(w.size()), w_f16(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    w_bf16[i] = tulu::f32_to_bf16(w[i]);
    w_f16[i] = tulu::f32_to_f16(w[i]);
  }
  std::vector<float> y(static_cast<size_t>(rows * out));
  const double flops = 2.0 * static_cast<double>(rows * out * in);
  tulu::ThreadPool pool(threads);
  tulu::MatmulScratch scratch(in, threads);
  std::printf("OpenBLAS core %s; x [%lld, %lld] · Wᵀ, W [%lld, %lld]; %d thread(s)\n",
              tulu::blas_core_name(), static_cast<long long>(rows), static_cast<long long>(in),
              static_cast<long long>(out), static_cast<long long>(in), threads);
  const struct {
    const char* name;
    tulu::DType dtype;
    const void* data;
  } cases[] = {{"F32", tulu::DType::F32, w.data()},
               {"BF16", tulu::DType::BF16, w_bf16.data()},
               {"F16", tulu::DType::F16, w_f16.data()}};
  // The first half second of a process measures slow on this VM (the second vCPU is slow to
  // join), whatever runs first: spend it on a warm-up.
  {
    tulu::TensorView view;
    view.dtype = tulu::DType::BF16;
    view.shape = {out, in};
    view.data = w_bf16.data();
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(500))
      tulu::matmul(x.data(), rows, view, y.data(), pool, &scratch);
  }
  for (const auto& c : cases) {
    tulu::TensorView view;
    view.dtype = c.dtype;
    view.shape = {out, in};
    view.data = c.data;
    const double s = best_seconds(
        [&] { tulu::matmul(x.data(), rows, view, y.data(), pool, &scratch); }, 5);
    std::printf("tulu::matmul %-4s  %7.1f GFLOP/s\n", c.name, flops / s / 1e9);
    const double s_blas = best_seconds(
        [&] { tulu::matmul_blas(x.data(), rows, view, y.data(), pool, &scratch); }, 5);
    std::printf("  sgemm path %-4s  %7.1f GFLOP/s\n", c.name, flops / s_blas / 1e9);
    if (c.dtype == tulu::DType::BF16 && rows > 24) {  // --bf16-activations
      tulu::set_bf16_activations(tulu::Bf16Activations::On);
      const double s_bf16 = best_seconds(
          [&] { tulu::matmul(x.data(), rows, view, y.data(), pool, &scratch); }, 5);
      tulu::set_bf16_activations(tulu::Bf16Activations::Auto);
      std::printf("  --bf16-activations %7.1f GFLOP/s\n", flops / s_bf16 / 1e9);
    }
  }
  // One sgemm call with OpenBLAS's own threading (what a caller without our pool gets).
  openblas_set_num_threads(threads);
  const double s = best_seconds(
      [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(rows),
                    static_cast<blasint>(out), static_cast<blasint>(in), 1.0f, x.data(),
                    static_cast<blasint>(in), w.data(), static_cast<blasint>(in), 0.0f, y.data(),
                    static_cast<blasint>(out));
      },
      5);
  std::printf("cblas_sgemm (OpenBLAS threads) %7.1f GFLOP/s\n", flops / s / 1e9);
  return 0;
}

// linear_backward.h: every product is one parallel_sgemm with the transposes given to BLAS
// as flags (no transposed copies); force_generic_kernels() runs linear_backward_ref.h with
// rows of the output split over the pool.
#include "kernels/linear_backward.h"

#include <cblas.h>

#include <algorithm>
#include <mutex>
#include <utility>

#include "kernels/dispatch.h"
#include "kernels/linear_backward_ref.h"

namespace tulu {

namespace {

// Rows/columns of C per block boundary: keeps each task's block a whole number of the
// vector-width micro-tiles sgemm uses.
constexpr int64_t kBlockUnit = 16;
// Multiply-adds per task at least, so that a task's sgemm amortises its hand-off.
constexpr int64_t kMinMacsPerTask = int64_t{1} << 18;
// Output rows per task on the scalar path.
constexpr size_t kMinRefRowsPerTask = 4;

// How C is cut: row_parts × col_parts blocks, one task each.
struct GemmGrid {
  int64_t row_parts = 1, col_parts = 1;
};

// As many tasks as the pool has threads (fewer for a small product), arranged to minimise
// what the tasks pack between them: each task's sgemm packs its rows of op(A) and its
// columns of op(B), so a grid r × c packs k·(m·c + n·r) elements in all. (A 1-D split of a
// square C over 16 threads packs the whole of op(B) 16 times; a 4 × 4 grid, 4 times each.)
GemmGrid choose_grid(int64_t m, int64_t n, int64_t k, int threads) {
  const int64_t m_units = (m + kBlockUnit - 1) / kBlockUnit;
  const int64_t n_units = (n + kBlockUnit - 1) / kBlockUnit;
  const int64_t tasks = std::clamp<int64_t>(m * n * k / kMinMacsPerTask, 1, threads);
  GemmGrid best;
  int64_t best_tasks = 1, best_cost = m + n;
  for (int64_t rows = 1; rows <= tasks; ++rows) {
    const int64_t cols = tasks / rows;
    if (rows > m_units || cols > n_units) continue;
    const int64_t used = rows * cols, cost = m * cols + n * rows;
    if (used > best_tasks || (used == best_tasks && cost < best_cost)) {
      best = {rows, cols};
      best_tasks = used;
      best_cost = cost;
    }
  }
  return best;
}

// Part `part` of `parts` nearly equal ranges of whole units over [0, size): {begin, end}.
std::pair<int64_t, int64_t> unit_range(int64_t size, int64_t parts, int64_t part) {
  const int64_t units = (size + kBlockUnit - 1) / kBlockUnit;
  const int64_t base = units / parts, extra = units % parts;
  const int64_t first = part * base + std::min(part, extra);
  const int64_t count = base + (part < extra ? 1 : 0);
  return {first * kBlockUnit, std::min(size, (first + count) * kBlockUnit)};
}

// OpenBLAS stays on the calling thread; our pool does the parallel work (see matmul.cc).
void set_blas_single_threaded() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

blasint blas_int(int64_t v) {
  return static_cast<blasint>(v);
}

}  // namespace

void parallel_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                    int64_t ldc, ThreadPool& pool) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {  // empty sums: BLAS rejects K = 0 with a zero leading dimension
    for (int64_t r = 0; r < m; ++r) {
      float* row = c + r * ldc;
      if (beta == 0.0f) {
        std::fill(row, row + n, 0.0f);
      } else if (beta != 1.0f) {
        for (int64_t j = 0; j < n; ++j) row[j] *= beta;
      }
    }
    return;
  }
  set_blas_single_threaded();
  const auto ta = trans_a ? CblasTrans : CblasNoTrans;
  const auto tb = trans_b ? CblasTrans : CblasNoTrans;
  const GemmGrid grid = choose_grid(m, n, k, pool.num_threads());
  const auto tasks = static_cast<size_t>(grid.row_parts * grid.col_parts);
  pool.parallel_for(tasks, 1, [&](size_t begin, size_t end) {
    for (auto task = static_cast<int64_t>(begin); task < static_cast<int64_t>(end); ++task) {
      const auto [row0, row1] = unit_range(m, grid.row_parts, task / grid.col_parts);
      const auto [col0, col1] = unit_range(n, grid.col_parts, task % grid.col_parts);
      const float* a_block = trans_a ? a + row0 : a + row0 * lda;  // rows of op(A)
      const float* b_block = trans_b ? b + col0 * ldb : b + col0;  // columns of op(B)
      cblas_sgemm(CblasRowMajor, ta, tb, blas_int(row1 - row0), blas_int(col1 - col0), blas_int(k),
                  alpha, a_block, blas_int(lda), b_block, blas_int(ldb), beta,
                  c + row0 * ldc + col0, blas_int(ldc));
    }
  });
}

void linear_forward(const float* x, int64_t rows, const float* w, int64_t out, int64_t in, float* y,
                    ThreadPool& pool) {
  if (force_generic_kernels()) {
    pool.parallel_for(static_cast<size_t>(std::max<int64_t>(rows, 0)), kMinRefRowsPerTask,
                      [&](size_t begin, size_t end) {
                        const auto b = static_cast<int64_t>(begin);
                        linear_forward_ref(x + b * in, static_cast<int64_t>(end) - b, w, out, in,
                                           y + b * out);
                      });
    return;
  }
  parallel_sgemm(/*trans_a=*/false, /*trans_b=*/true, rows, out, in, 1.0f, x, in, w, in, 0.0f, y,
                 out, pool);
}

void linear_backward_input(const float* dy, int64_t rows, const float* w, int64_t out, int64_t in,
                           float* dx, bool accumulate, ThreadPool& pool) {
  if (force_generic_kernels()) {
    pool.parallel_for(static_cast<size_t>(std::max<int64_t>(rows, 0)), kMinRefRowsPerTask,
                      [&](size_t begin, size_t end) {
                        const auto b = static_cast<int64_t>(begin);
                        linear_backward_input_ref(dy + b * out, static_cast<int64_t>(end) - b, w,
                                                  out, in, dx + b * in, accumulate);
                      });
    return;
  }
  parallel_sgemm(/*trans_a=*/false, /*trans_b=*/false, rows, in, out, 1.0f, dy, out, w, in,
                 accumulate ? 1.0f : 0.0f, dx, in, pool);
}

void linear_backward_weight(const float* dy, const float* x, int64_t rows, int64_t out, int64_t in,
                            float* dw, ThreadPool& pool) {
  if (force_generic_kernels()) {
    pool.parallel_for(static_cast<size_t>(std::max<int64_t>(out, 0)), kMinRefRowsPerTask,
                      [&](size_t begin, size_t end) {
                        linear_backward_weight_ref(dy, x, rows, out, in, dw,
                                                   static_cast<int64_t>(begin),
                                                   static_cast<int64_t>(end));
                      });
    return;
  }
  parallel_sgemm(/*trans_a=*/true, /*trans_b=*/false, out, in, rows, 1.0f, dy, out, x, in, 1.0f, dw,
                 in, pool);
}

}  // namespace tulu

// linear_backward.h: every product is one parallel_sgemm with the transposes given to BLAS
// as flags (no transposed copies); force_generic_kernels() runs linear_backward_ref.h with
// rows of the output split over the pool.
#include "kernels/linear_backward.h"

#include <cblas.h>

#include <algorithm>
#include <mutex>

#include "kernels/dispatch.h"
#include "kernels/linear_backward_ref.h"

namespace tulu {

namespace {

// Rows/columns of C per block boundary: keeps each task's block a whole number of the
// vector-width micro-tiles sgemm uses.
constexpr int64_t kBlockUnit = 16;
// Units per pool chunk at least, so that a task's sgemm amortises its hand-off.
constexpr size_t kMinUnitsPerTask = 2;
// Output rows per task on the scalar path.
constexpr size_t kMinRefRowsPerTask = 4;

// OpenBLAS stays on the calling thread; our pool does the parallel work (see matmul.cc).
void set_blas_single_threaded() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

blasint blas_int(int64_t v) { return static_cast<blasint>(v); }

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
  const bool split_rows = m >= n;
  const int64_t split_dim = split_rows ? m : n;
  const auto units = static_cast<size_t>((split_dim + kBlockUnit - 1) / kBlockUnit);
  pool.parallel_for(units, kMinUnitsPerTask, [&](size_t begin, size_t end) {
    const int64_t first = static_cast<int64_t>(begin) * kBlockUnit;
    const int64_t last = std::min(split_dim, static_cast<int64_t>(end) * kBlockUnit);
    if (split_rows) {  // rows [first, last) of op(A) and of C
      const float* a_block = trans_a ? a + first : a + first * lda;
      cblas_sgemm(CblasRowMajor, ta, tb, blas_int(last - first), blas_int(n), blas_int(k), alpha,
                  a_block, blas_int(lda), b, blas_int(ldb), beta, c + first * ldc, blas_int(ldc));
    } else {  // columns [first, last) of op(B) and of C
      const float* b_block = trans_b ? b + first * ldb : b + first;
      cblas_sgemm(CblasRowMajor, ta, tb, blas_int(m), blas_int(last - first), blas_int(k), alpha,
                  a, blas_int(lda), b_block, blas_int(ldb), beta, c + first, blas_int(ldc));
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

// The linear layer y = x · Wᵀ on fp32 master weights (training), forward and backward.
// x [rows, in], W [out, in] (PyTorch's Linear layout), y [rows, out]; all row-major fp32.
// GEMMs through OpenBLAS (single-threaded calls, the work split over our pool, as in
// matmul.h); force_generic_kernels() selects the scalar reference (linear_backward_ref.h).
// Threading: every function splits its output over `pool`; not re-entrant.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"

namespace tulu {

// y = x · Wᵀ (y overwritten). y must not alias x or w.
void linear_forward(const float* x, int64_t rows, const float* w, int64_t out, int64_t in, float* y,
                    ThreadPool& pool);

// dx = dy · W  ([rows, out] · [out, in] → [rows, in]); overwritten, or added to dx when
// accumulate (a residual stream's gradient). dx must not alias dy or w.
void linear_backward_input(const float* dy, int64_t rows, const float* w, int64_t out, int64_t in,
                           float* dx, bool accumulate, ThreadPool& pool);

// dW += dyᵀ · x  ([out, rows] · [rows, in] → [out, in]); always accumulates (gradient
// accumulation over micro-batches and over tied uses of one weight).
void linear_backward_weight(const float* dy, const float* x, int64_t rows, int64_t out, int64_t in,
                            float* dw, ThreadPool& pool);

// The GEMM under the three functions above, for other training code that needs one:
// C[m, n] = alpha · op(A) · op(B) + beta · C, all row-major fp32, op(A) [m, k] (A stored
// [k, m] when trans_a), op(B) [k, n] (B stored [n, k] when trans_b); lda/ldb/ldc are the
// stored row strides. C is cut into a grid of blocks (edges multiples of 16), one per pool
// thread, shaped to minimise the packing the tasks repeat; each block is one
// single-threaded OpenBLAS sgemm. k = 0 gives C = beta · C.
// C must not alias A or B. Always BLAS (no scalar-reference switch).
void parallel_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                    const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                    int64_t ldc, ThreadPool& pool);

}  // namespace tulu

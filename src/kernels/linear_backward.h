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

}  // namespace tulu

// Backward of rmsnorm() (rmsnorm.h: out = w · (x · r), r = 1/sqrt(mean(x²) + eps), per row).
// With g = dout · w:  dx = r · (g − x · r² · mean(g · x)),  dw = Σ_rows dout · x · r.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"

namespace tulu {

// x, dout: [rows, n]; weight: [n]. dx [rows, n] is ADDED to (the residual stream's gradient
// flows through unchanged and the norm's contribution is added on top). dweight [n] is
// added to. Rows are split over the pool for dx; dweight's columns are split over it, each
// summed over the rows in row order, so dx and dweight are the same bits for every thread
// count. force_generic_kernels(): rmsnorm_backward_ref.h on the calling thread.
void rmsnorm_backward(const float* x, const float* weight, const float* dout, int64_t rows,
                      int64_t n, float eps, float* dx, float* dweight, ThreadPool& pool);

}  // namespace tulu

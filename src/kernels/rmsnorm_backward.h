// Backward of rmsnorm() (rmsnorm.h: out = w · (x · r), r = 1/sqrt(mean(x²) + eps), per row).
// With g = dout · w:  dx = r · (g − x · r² · mean(g · x)),  dw = Σ_rows dout · x · r.
#pragma once

#include <cstdint>

#include "core/thread_pool.h"

namespace tulu {

// x, dout: [rows, n]; weight: [n]. dx [rows, n] is ADDED to (the residual stream's gradient
// flows through unchanged and the norm's contribution is added on top). dweight [n] is
// added to. Rows may be split over the pool (dweight reduced deterministically: the result
// does not depend on the thread count beyond fp32 summation order of a fixed split).
void rmsnorm_backward(const float* x, const float* weight, const float* dout, int64_t rows,
                      int64_t n, float eps, float* dx, float* dweight, ThreadPool& pool);

}  // namespace tulu

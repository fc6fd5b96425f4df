// Scalar reference (the specification) of rmsnorm_backward.h, templated on the number type.
// Per row, with r = 1/sqrt(mean(x²) + eps) and g = dout · w:
//   dx += r · g − x · (r³ · mean(g · x)),   dw += dout · x · r   (rows in order).
#pragma once

#include <cmath>
#include <cstdint>

namespace tulu {

template <typename T>
void rmsnorm_backward_ref(const T* x, const T* weight, const T* dout, int64_t rows, int64_t n,
                          T eps, T* dx, T* dweight) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * n;
    const T* dr = dout + r * n;
    T sum_squares = 0, gx = 0;
    for (int64_t i = 0; i < n; ++i) {
      sum_squares += xr[i] * xr[i];
      gx += dr[i] * weight[i] * xr[i];
    }
    const T mean = n > 0 ? sum_squares / static_cast<T>(n) : T(0);
    const T inv_rms = T(1) / std::sqrt(mean + eps);
    const T coefficient = n > 0 ? inv_rms * inv_rms * inv_rms * gx / static_cast<T>(n) : T(0);
    for (int64_t i = 0; i < n; ++i) {
      dx[r * n + i] += inv_rms * (dr[i] * weight[i]) - xr[i] * coefficient;
      dweight[i] += dr[i] * xr[i] * inv_rms;
    }
  }
}

}  // namespace tulu

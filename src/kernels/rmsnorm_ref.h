// Scalar reference (the specification) of rmsnorm.h, templated on the number type.
#pragma once

#include <cmath>
#include <cstdint>

namespace tulu {

template <typename T>
void rmsnorm_ref(const T* x, const T* weight, T* out, int64_t rows, int64_t n, T eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = x + r * n;
    T sum_squares = 0;
    for (int64_t i = 0; i < n; ++i) sum_squares += row[i] * row[i];
    const T mean = n > 0 ? sum_squares / static_cast<T>(n) : T(0);
    const T inv_rms = T(1) / std::sqrt(mean + eps);
    for (int64_t i = 0; i < n; ++i) out[r * n + i] = weight[i] * (row[i] * inv_rms);
  }
}

}  // namespace tulu
